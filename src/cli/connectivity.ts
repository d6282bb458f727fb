/**
 * `fleetd connectivity …`: connectivity classes (docs/connectivity.md), the heartbeat interval and the
 * offline/abandoned thresholds of devices matched by hardware type, tag value or group.
 */
import type { Command } from 'commander';
import type { Static } from 'typebox';
import type { ConnectivityClassJson, ConnectivityClassList } from '../protocol/connectivity.js';
import { CliError, type Client } from './client.js';
import { type OutputFormat, printJson, table } from './output.js';

interface Ctx {
  client(): Client;
  format(): OutputFormat;
}

type ClassJson = Static<typeof ConnectivityClassJson>;

interface SetOptions {
  hardware?: string;
  tag?: string;
  group?: string;
  interval: string;
  offlineAfter: string;
  abandonedAfter: string;
  priority?: string;
}

/** The request body from the flags: exactly one match; the server checks the durations and their order. */
export function classBody(opts: SetOptions): Record<string, unknown> {
  const given = [opts.hardware, opts.tag, opts.group].filter((v) => v !== undefined);
  if (given.length !== 1) {
    throw new CliError('connectivity set: give exactly one of --hardware, --tag KEY=VALUE or --group');
  }
  let match: Record<string, unknown>;
  if (opts.hardware !== undefined) match = { hardware: opts.hardware };
  else if (opts.group !== undefined) match = { group: opts.group };
  else {
    const at = opts.tag!.indexOf('=');
    if (at <= 0 || at === opts.tag!.length - 1) {
      throw new CliError(`connectivity set: --tag "${opts.tag}" must be KEY=VALUE, e.g. power=battery`);
    }
    match = { tag: { key: opts.tag!.slice(0, at), value: opts.tag!.slice(at + 1) } };
  }
  const body: Record<string, unknown> = {
    match,
    heartbeat_interval: opts.interval,
    offline_after: opts.offlineAfter,
    abandoned_after: opts.abandonedAfter,
  };
  if (opts.priority !== undefined) {
    const priority = Number(opts.priority);
    if (!Number.isInteger(priority)) {
      throw new CliError(`connectivity set: --priority "${opts.priority}" must be a whole number`);
    }
    body.priority = priority;
  }
  return body;
}

const matchText = (m: ClassJson['match']) =>
  'hardware' in m
    ? `hardware=${m.hardware}`
    : 'tag' in m
      ? `tag.${m.tag.key}=${m.tag.value}`
      : `group=${m.group}`;

const row = (c: ClassJson) => [
  c.name,
  matchText(c.match),
  c.heartbeat_interval,
  c.offline_after,
  c.abandoned_after,
  c.priority,
  c.device_count,
];
const HEADERS = ['NAME', 'MATCH', 'INTERVAL', 'OFFLINE AFTER', 'ABANDONED AFTER', 'PRIORITY', 'DEVICES'];

export function registerConnectivity(program: Command, ctx: Ctx): void {
  const connectivity = program
    .command('connectivity')
    .description(
      'connectivity classes: heartbeat interval and offline/abandoned thresholds per kind of device',
    );

  connectivity
    .command('set')
    .argument('<name>', 'class name (a-z, 0-9, . _ -)')
    .option('--hardware <type>', 'devices of this hardware type')
    .option('--tag <key=value>', 'devices with this tag value')
    .option('--group <name>', 'devices of this group')
    .requiredOption('--interval <duration>', 'how often the devices are asked to heartbeat, e.g. 1h')
    .requiredOption('--offline-after <duration>', 'silence after which a device is offline, e.g. 3h')
    .requiredOption('--abandoned-after <duration>', 'silence after which a device is abandoned, e.g. 30d')
    .option('--priority <n>', 'higher wins when a device matches several classes (default 0)')
    .description('create or replace a connectivity class')
    .action(async (name: string, opts: SetOptions) => {
      const r = await ctx
        .client()
        .request<ClassJson>(
          'PUT',
          `/api/v1/connectivity-classes/${encodeURIComponent(name)}`,
          classBody(opts),
        );
      if (ctx.format() === 'json') printJson(r);
      else
        console.log(
          `${r.name}: ${matchText(r.match)}, every ${r.heartbeat_interval}, ${r.device_count} devices`,
        );
    });

  connectivity
    .command('ls')
    .description('connectivity classes in precedence order (a device is in the first it matches)')
    .action(async () => {
      const r = await ctx
        .client()
        .request<Static<typeof ConnectivityClassList>>('GET', '/api/v1/connectivity-classes');
      if (ctx.format() === 'json') return printJson(r);
      if (r.classes.length === 0) {
        console.log('no connectivity classes: every device uses the server-wide thresholds');
        return;
      }
      console.log(table(HEADERS, r.classes.map(row)));
    });

  connectivity
    .command('rm')
    .argument('<name>', 'class name')
    .description('remove a class: its devices go back to the server-wide thresholds or another class')
    .action(async (name: string) => {
      const r = await ctx
        .client()
        .request<{ deleted: string }>('DELETE', `/api/v1/connectivity-classes/${encodeURIComponent(name)}`);
      if (ctx.format() === 'json') printJson(r);
      else console.log(`${r.deleted}: removed`);
    });
}
