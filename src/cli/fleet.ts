/** `fleetd fleet stats`, `fleetd events ls`. */
import type { Command } from 'commander';
import type { StatsJson as Stats } from '../protocol/operator-api.js';
import type { Client } from './client.js';
import { type OutputFormat, printJson, table } from './output.js';

interface Ctx {
  client(): Client;
  format(): OutputFormat;
}

const pct = (n: number, total: number) => (total === 0 ? '0%' : `${Math.round((100 * n) / total)}%`);

export function registerFleet(program: Command, ctx: Ctx): void {
  const fleet = program.command('fleet').description('the fleet as a whole');
  fleet
    .command('history')
    .description('the online share over time (recorded every few minutes)')
    .option('--since <duration>', 'how far back, e.g. 24h or 7d', '24h')
    .action(async (opts: { since: string }) => {
      const r = await ctx.client().request<{
        snapshots: Array<{ at: string; total: number; by_status: Record<string, number> }>;
      }>('GET', `/api/v1/fleet/history?since=${encodeURIComponent(opts.since)}`);
      if (ctx.format() === 'json') return printJson(r);
      console.log(
        table(
          ['AT', 'DEVICES', 'ONLINE', 'OFFLINE', 'ABANDONED', 'UNKNOWN', 'ONLINE %'],
          r.snapshots.map((s) => [
            s.at,
            s.total,
            s.by_status.online,
            s.by_status.offline,
            s.by_status.abandoned,
            s.by_status.unknown,
            pct(s.by_status.online ?? 0, s.total - (s.by_status.decommissioned ?? 0)),
          ]),
        ),
      );
    });
  fleet
    .command('stats')
    .description('counts by status, firmware distribution, hardware types and tag breakdowns')
    .option('-f, --filter <expr>', 'only devices matching this filter')
    .option('--tag <key...>', 'break down by these tag keys (default: all)')
    .action(async (opts: { filter?: string; tag?: string[] }) => {
      const params = new URLSearchParams();
      if (opts.filter) params.set('filter', opts.filter);
      for (const t of opts.tag ?? []) params.append('tag', t);
      const s = await ctx.client().request<Stats>('GET', `/api/v1/fleet/stats?${params}`);
      if (ctx.format() === 'json') return printJson(s);
      console.log(`${s.total} devices\n`);
      console.log(
        table(
          ['STATUS', 'DEVICES', 'SHARE'],
          Object.entries(s.by_status).map(([k, n]) => [k, n, pct(n, s.total)]),
        ),
      );
      console.log(
        `\n${table(
          ['FIRMWARE', 'DEVICES'],
          s.firmware.map((f) => [f.version, f.count]),
        )}`,
      );
      console.log(
        `\n${table(
          ['HARDWARE', 'DEVICES'],
          s.hardware.map((h) => [h.hardware_type, h.count]),
        )}`,
      );
      for (const [key, values] of Object.entries(s.tags)) {
        console.log(`\n${table([`TAG ${key}`, 'DEVICES'], Object.entries(values))}`);
      }
      console.log(
        `\nsilent for more than 24 h: ${s.silent.over_24h}, more than 30 days: ${s.silent.over_30d}`,
      );
    });

  const events = program.command('events').description('the event log');
  events
    .command('watch')
    .description('follow events as they happen (server-sent events); Ctrl-C to stop')
    .option('--after <id>', 'start after this event id (default: from now on)')
    .option('--device <id>', "only this device's events")
    .option('--type <prefix>', 'only events whose type starts with this')
    .action(async (opts: { after?: string; device?: string; type?: string }) => {
      const params = new URLSearchParams();
      if (opts.after) params.set('after', opts.after);
      if (opts.device) params.set('device', opts.device);
      if (opts.type) params.set('type', opts.type);
      await ctx.client().events(`/api/v1/events/stream?${params}`, (data) => {
        const e = data as {
          id: number;
          at: string;
          type: string;
          device_id: string | null;
          reason: string | null;
        };
        if (ctx.format() === 'json') console.log(JSON.stringify(e));
        else console.log(`${e.at}  ${e.type.padEnd(24)} ${e.device_id ?? '-'}  ${e.reason ?? ''}`.trimEnd());
      });
    });
  events
    .command('ls')
    .description('stored events, oldest first, after a cursor')
    .option('--after <id>', 'only events after this id', '0')
    .option('--device <id>', "only this device's events")
    .option('--type <prefix>', 'only events whose type starts with this, e.g. device.status')
    .option('--limit <n>', 'how many at most', '100')
    .action(async (opts: { after: string; device?: string; type?: string; limit: string }) => {
      const params = new URLSearchParams({ after: opts.after, limit: opts.limit });
      if (opts.device) params.set('device', opts.device);
      if (opts.type) params.set('type', opts.type);
      const r = await ctx.client().request<{
        events: Array<{
          id: number;
          at: string;
          type: string;
          device_id: string | null;
          reason: string | null;
          data: unknown;
        }>;
      }>('GET', `/api/v1/events?${params}`);
      if (ctx.format() === 'json') return printJson(r);
      console.log(
        table(
          ['ID', 'AT', 'TYPE', 'DEVICE', 'REASON', 'DATA'],
          r.events.map((e) => [e.id, e.at, e.type, e.device_id, e.reason, JSON.stringify(e.data)]),
        ),
      );
    });
}
