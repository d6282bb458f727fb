/**
 * `fleetd windows …`: a device's own maintenance windows, honoured by rollouts with `window: device_defined`,
 * windows set on a group or a tag value (taken by devices without their own), and a device's deferrals of offered
 * updates (docs/rollouts.md, "Windows that belong to devices").
 */
import type { Command } from 'commander';
import type { Static } from 'typebox';
import type {
  DeviceWindowsReply,
  GroupWindowsJson,
  GroupWindowsListReply,
  TagWindowsJson,
  TagWindowsListReply,
  WindowsListReply,
} from '../protocol/windows.js';
import { CliError, type Client } from './client.js';
import { type OutputFormat, printJson, table } from './output.js';

interface Ctx {
  client(): Client;
  format(): OutputFormat;
}

const WORD = /^(\d{2}:\d{2})-(\d{2}:\d{2})(?:\/([a-z,]+))?$/;

/** `02:00-04:00` or `22:00-06:00/sat,sun` → a window document; the server checks the rest (field-named). */
export function parseWindowWord(word: string, timezone: string | undefined): Record<string, unknown> {
  const m = WORD.exec(word);
  if (!m) {
    throw new CliError(
      `windows set: "${word}" must be HH:MM-HH:MM, optionally /days, e.g. 22:00-02:00/sat,sun`,
    );
  }
  return {
    start: m[1],
    end: m[2],
    ...(m[3] === undefined ? {} : { days: m[3].split(',') }),
    ...(timezone === undefined ? {} : { timezone }),
  };
}

type WindowDoc = Record<string, unknown>;
const showWindow = (w: WindowDoc) => {
  const days = Array.isArray(w.days) && w.days.length < 7 ? `/${w.days.join(',')}` : '';
  const when = w.cron === undefined ? `${w.start}-${w.end}${days}` : `cron "${w.cron}" for ${w.duration}`;
  return w.timezone === 'device' ? when : `${when} ${w.timezone}`;
};
const showWindows = (w: { windows: WindowDoc[] }) => w.windows.map(showWindow).join(', ');

/** Where a device's windows come from, as `show` prints it. */
function showSource(r: Static<typeof DeviceWindowsReply>): string {
  const from = r.resolved;
  if (from === null) return "source: fallback (each rollout's fallback_window)";
  if (from.source === 'device') return 'source: device';
  return `source: ${from.from.map((name) => `${from.source} ${name}`).join(', ')}: ${showWindows(from)}`;
}

function printDevice(r: Static<typeof DeviceWindowsReply>, withSource: boolean): void {
  if (r.windows === null) console.log(`${r.device_id}: no windows of its own`);
  else {
    console.log(
      `${r.device_id}: ${showWindows(r.windows)} (set by ${r.windows.updated_by ?? r.windows.source})`,
    );
  }
  if (withSource) console.log(showSource(r));
  if (r.deferrals.length === 0) return;
  console.log(
    table(
      ['UPDATE', 'ROLLOUT', 'DEFERRALS', 'FIRST', 'DEFERRED UNTIL'],
      r.deferrals.map((d) => [d.update_id, d.rollout_id, d.count, d.first_at, d.deferred_until]),
    ),
  );
}

interface TargetFlags {
  tag?: string;
  group?: string;
}

type Target =
  | { kind: 'device'; id: string }
  | { kind: 'group'; name: string }
  | { kind: 'tag'; key: string; value: string };

/** The device, group or tag value a command is about: `--group NAME`, `--tag k=v`, or a device id. */
function targetOf(command: string, id: string | undefined, flags: TargetFlags): Target {
  const given = [id !== undefined, flags.tag !== undefined, flags.group !== undefined].filter(Boolean).length;
  if (given !== 1)
    throw new CliError(`windows ${command}: give one of a device id, --group NAME or --tag KEY=VALUE`);
  if (flags.group !== undefined) return { kind: 'group', name: flags.group };
  if (flags.tag !== undefined) {
    const at = flags.tag.indexOf('=');
    if (at <= 0 || at === flags.tag.length - 1) {
      throw new CliError(`--tag: "${flags.tag}" must be KEY=VALUE, e.g. customer=acme`);
    }
    return { kind: 'tag', key: flags.tag.slice(0, at), value: flags.tag.slice(at + 1) };
  }
  return { kind: 'device', id: id! };
}

const pathOf = (t: Target) =>
  t.kind === 'device'
    ? `/api/v1/devices/${encodeURIComponent(t.id)}/windows`
    : t.kind === 'group'
      ? `/api/v1/windows/groups/${encodeURIComponent(t.name)}`
      : `/api/v1/windows/tags/${encodeURIComponent(t.key)}/${encodeURIComponent(t.value)}`;

const nameOf = (t: Target) =>
  t.kind === 'device' ? t.id : t.kind === 'group' ? `group ${t.name}` : `tag ${t.key}=${t.value}`;

type SharedJson = Static<typeof GroupWindowsJson> | Static<typeof TagWindowsJson>;

function printShared(t: Target, w: SharedJson): void {
  console.log(`${nameOf(t)}: ${showWindows(w)} (set by ${w.updated_by ?? 'unknown'})`);
}

export function registerWindows(program: Command, ctx: Ctx): void {
  const windows = program
    .command('windows')
    .description(
      'maintenance windows of devices, groups and tag values (rollouts with window: device_defined) and deferrals',
    );
  const targetOptions = (c: Command) =>
    c
      .option('--group <name>', "a group's windows (for its devices without windows of their own)")
      .option('--tag <key=value>', "a tag value's windows, e.g. customer=acme");

  targetOptions(
    windows
      .command('set')
      .argument(
        '<words...>',
        "a device id (unless --group or --tag), then HH:MM-HH:MM[/days] in the device's local time, e.g. 02:00-04:00 22:00-23:00/sat,sun",
      )
      .option('--timezone <zone>', "an IANA zone instead of the device's own")
      .description('replace the maintenance windows of a device, a group or a tag value'),
  ).action(async (words: string[], opts: TargetFlags & { timezone?: string }) => {
    const shared = opts.group !== undefined || opts.tag !== undefined;
    const id = shared ? undefined : words[0];
    const target = targetOf('set', id, opts);
    const given = shared ? words : words.slice(1);
    if (given.length === 0) throw new CliError('windows set: give at least one window, e.g. 02:00-04:00');
    const body = { windows: given.map((w) => parseWindowWord(w, opts.timezone)) };
    const r = await ctx.client().request<unknown>('PUT', pathOf(target), body);
    if (ctx.format() === 'json') printJson(r);
    else if (target.kind === 'device') printDevice(r as Static<typeof DeviceWindowsReply>, false);
    else printShared(target, r as SharedJson);
  });

  targetOptions(
    windows
      .command('show')
      .argument('[id]', 'device id')
      .description(
        "a device's windows, where the windows it takes come from (device, group, tag or fallback) and its deferrals; or a group's or tag value's windows",
      ),
  ).action(async (id: string | undefined, opts: TargetFlags) => {
    const target = targetOf('show', id, opts);
    const r = await ctx.client().request<unknown>('GET', pathOf(target));
    if (ctx.format() === 'json') printJson(r);
    else if (target.kind === 'device') printDevice(r as Static<typeof DeviceWindowsReply>, true);
    else printShared(target, r as SharedJson);
  });

  targetOptions(
    windows
      .command('rm')
      .argument('[id]', 'device id')
      .description('remove the windows of a device, a group or a tag value'),
  ).action(async (id: string | undefined, opts: TargetFlags) => {
    const target = targetOf('rm', id, opts);
    const r = await ctx.client().request<unknown>('DELETE', pathOf(target));
    if (ctx.format() === 'json') printJson(r);
    else console.log(`${nameOf(target)}: windows removed`);
  });

  windows
    .command('ls')
    .description('devices with windows of their own (--groups, --tags: groups or tag values with windows)')
    .option('--groups', 'groups with windows')
    .option('--tags', 'tag values with windows')
    .option('--limit <n>', 'entries per page (1-1000)', '100')
    .option('--after <id>', 'the last device id (group name, key=value) of the previous page')
    .action(async (opts: { limit: string; after?: string; groups?: boolean; tags?: boolean }) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
        throw new CliError(`--limit: "${opts.limit}" must be a whole number from 1 to 1000`);
      }
      if (opts.groups && opts.tags) throw new CliError('windows ls: give --groups or --tags, not both');
      const query = new URLSearchParams({ limit: String(limit) });
      if (opts.after !== undefined) query.set('after', opts.after);
      const client = ctx.client();
      if (opts.groups || opts.tags) {
        const r = opts.groups
          ? await client.request<Static<typeof GroupWindowsListReply>>(
              'GET',
              `/api/v1/windows/groups?${query}`,
            )
          : await client.request<Static<typeof TagWindowsListReply>>('GET', `/api/v1/windows/tags?${query}`);
        if (ctx.format() === 'json') return printJson(r);
        console.log(
          table(
            [opts.groups ? 'GROUP' : 'TAG', 'WINDOWS', 'SET BY', 'UPDATED'],
            r.windows.map((w) => [
              'group' in w ? w.group : `${w.key}=${w.value}`,
              showWindows(w),
              w.updated_by,
              w.updated_at,
            ]),
          ),
        );
        if (r.next !== null) console.log(`more: --after ${r.next}`);
        return;
      }
      const r = await client.request<Static<typeof WindowsListReply>>('GET', `/api/v1/windows?${query}`);
      if (ctx.format() === 'json') return printJson(r);
      console.log(
        table(
          ['DEVICE', 'WINDOWS', 'SOURCE', 'UPDATED'],
          r.windows.map((w) => [w.device_id, showWindows(w), w.source, w.updated_at]),
        ),
      );
      if (r.next !== null) console.log(`more: --after ${r.next}`);
    });
}
