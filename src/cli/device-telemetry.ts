/** `fleetd devices telemetry ID` and `fleetd devices inventory ID` (docs/telemetry.md). */
import type { Command } from 'commander';
import type { InventoryJsonReply, TelemetrySeriesJson } from '../protocol/telemetry.js';
import type { Client } from './client.js';
import { type OutputFormat, printJson, table } from './output.js';

interface Ctx {
  client(): Client;
  format(): OutputFormat;
}

const round = (n: number) => String(Math.round(n * 100) / 100);

export function registerDeviceTelemetry(devices: Command, ctx: Ctx): void {
  devices
    .command('telemetry')
    .argument('<id>', 'the device')
    .description("a device's latest telemetry and its series (raw for 48 h, hourly for 90 days)")
    .option('--since <duration>', 'how far back (default 24h raw, 7d hourly)')
    .option('--hourly', 'hourly aggregates instead of raw samples')
    .option('--metric <name>', 'one metric only')
    .action(async (id: string, opts: { since?: string; hourly?: boolean; metric?: string }) => {
      const query = new URLSearchParams();
      if (opts.since !== undefined) query.set('since', opts.since);
      if (opts.hourly) query.set('resolution', 'hourly');
      if (opts.metric !== undefined) query.set('metric', opts.metric);
      const path = `/api/v1/devices/${encodeURIComponent(id)}/telemetry${query.size > 0 ? `?${query}` : ''}`;
      const r = await ctx.client().request<TelemetrySeriesJson>('GET', path);
      if (ctx.format() === 'json') return printJson(r);
      if (r.latest.length === 0) return console.log(`${id} has reported no telemetry`);
      const rows = r.latest.map((l) => {
        const points = r.series.find((s) => s.name === l.name)?.points ?? [];
        const avgs = points.map((p) => p.avg);
        return [
          l.name,
          round(l.value),
          points.length,
          avgs.length > 0 ? round(Math.min(...points.map((p) => p.min))) : '',
          avgs.length > 0 ? round(Math.max(...points.map((p) => p.max))) : '',
          l.at,
        ];
      });
      console.log(table(['METRIC', 'LATEST', `POINTS (${r.resolution})`, 'MIN', 'MAX', 'AT'], rows));
    });

  devices
    .command('inventory')
    .argument('<id>', 'the device')
    .description("a device's latest inventory: OS, kernel, network interfaces, installed packages")
    .option('--packages', 'list every installed package')
    .action(async (id: string, opts: { packages?: boolean }) => {
      const r = await ctx
        .client()
        .request<InventoryJsonReply>('GET', `/api/v1/devices/${encodeURIComponent(id)}/inventory`);
      if (ctx.format() === 'json') return printJson(r);
      console.log(`os:        ${r.os ?? '(unknown)'}`);
      console.log(`kernel:    ${r.kernel ?? '(unknown)'}`);
      console.log(`reported:  ${r.reported_at}`);
      for (const i of r.interfaces)
        console.log(`interface: ${i.name} ${i.mac ?? ''} ${i.addresses.join(' ')}`);
      console.log(`packages:  ${r.packages.length}${opts.packages ? '' : ' (--packages lists them)'}`);
      if (opts.packages)
        console.log(
          table(
            ['PACKAGE', 'VERSION'],
            r.packages.map((p) => [p.name, p.version]),
          ),
        );
    });
}
