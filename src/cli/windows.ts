/**
 * `fleetd windows …`: a device's own maintenance windows, honoured by rollouts with `window: device_defined`,
 * and its deferrals of offered updates (docs/rollouts.md, "Windows that belong to devices").
 */
import type { Command } from 'commander';
import type { Static } from 'typebox';
import type { DeviceWindowsJson, DeviceWindowsReply, WindowsListReply } from '../protocol/windows.js';
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
const showWindows = (w: Static<typeof DeviceWindowsJson>) => w.windows.map(showWindow).join(', ');

function printDevice(r: Static<typeof DeviceWindowsReply>): void {
  if (r.windows === null)
    console.log(`${r.device_id}: no windows of its own (rollouts use their fallback window)`);
  else {
    console.log(
      `${r.device_id}: ${showWindows(r.windows)} (set by ${r.windows.updated_by ?? r.windows.source})`,
    );
  }
  if (r.deferrals.length === 0) return;
  console.log(
    table(
      ['UPDATE', 'ROLLOUT', 'DEFERRALS', 'FIRST', 'DEFERRED UNTIL'],
      r.deferrals.map((d) => [d.update_id, d.rollout_id, d.count, d.first_at, d.deferred_until]),
    ),
  );
}

export function registerWindows(program: Command, ctx: Ctx): void {
  const windows = program
    .command('windows')
    .description("devices' own maintenance windows (rollouts with window: device_defined) and deferrals");

  windows
    .command('set')
    .argument('<id>', 'device id')
    .argument(
      '<windows...>',
      "HH:MM-HH:MM[/days], in the device's local time, e.g. 02:00-04:00 22:00-23:00/sat,sun",
    )
    .option('--timezone <zone>', "an IANA zone instead of the device's own")
    .description("replace a device's own maintenance windows")
    .action(async (id: string, words: string[], opts: { timezone?: string }) => {
      const body = { windows: words.map((w) => parseWindowWord(w, opts.timezone)) };
      const r = await ctx
        .client()
        .request<Static<typeof DeviceWindowsReply>>(
          'PUT',
          `/api/v1/devices/${encodeURIComponent(id)}/windows`,
          body,
        );
      if (ctx.format() === 'json') printJson(r);
      else printDevice(r);
    });

  windows
    .command('show')
    .argument('<id>', 'device id')
    .description("a device's own windows and its deferrals of offered updates")
    .action(async (id: string) => {
      const r = await ctx
        .client()
        .request<Static<typeof DeviceWindowsReply>>(
          'GET',
          `/api/v1/devices/${encodeURIComponent(id)}/windows`,
        );
      if (ctx.format() === 'json') printJson(r);
      else printDevice(r);
    });

  windows
    .command('rm')
    .argument('<id>', 'device id')
    .description("remove a device's own windows (rollouts then use their fallback window for it)")
    .action(async (id: string) => {
      const r = await ctx
        .client()
        .request<Static<typeof DeviceWindowsReply>>(
          'DELETE',
          `/api/v1/devices/${encodeURIComponent(id)}/windows`,
        );
      if (ctx.format() === 'json') printJson(r);
      else console.log(`${id}: windows removed`);
    });

  windows
    .command('ls')
    .description('devices with windows of their own')
    .option('--limit <n>', 'devices per page (1-1000)', '100')
    .option('--after <id>', 'the last device id of the previous page')
    .action(async (opts: { limit: string; after?: string }) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
        throw new CliError(`--limit: "${opts.limit}" must be a whole number from 1 to 1000`);
      }
      const query = new URLSearchParams({ limit: String(limit) });
      if (opts.after !== undefined) query.set('after', opts.after);
      const r = await ctx
        .client()
        .request<Static<typeof WindowsListReply>>('GET', `/api/v1/windows?${query}`);
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
