/** `fleetd devices …` */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type {
  DeviceCertificateListJson,
  DeviceJson,
  RevokedCertificatesJson,
} from '../protocol/operator-api.js';
import { registerAdmission } from './admission.js';
import { CliError, type Client } from './client.js';
import { registerExec } from './commands.js';
import { configLine, registerDeviceConfig } from './config.js';
import { registerDeviceTags } from './device-tags.js';
import { registerDeviceTelemetry } from './device-telemetry.js';
import { checkImportFile } from './import-file.js';
import { ago, type OutputFormat, printJson, table } from './output.js';

interface Ctx {
  client(): Client;
  format(): OutputFormat;
}

function readImportFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new CliError(
      `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new CliError(`${file} is not valid JSON: ${(error as Error).message}`);
  }
  const body = Array.isArray(parsed) ? { devices: parsed } : parsed;
  if (!Array.isArray((body as { devices?: unknown })?.devices))
    throw new CliError(`${file}: expected {"devices": [...]} or an array of devices`);
  return body;
}

/** Which update client the device runs: FleetD's agent, or SWUpdate or mender-client served as they are. */
const clientOf = (d: DeviceJson) => d.tags.client ?? 'agent';

export function deviceTable(devices: DeviceJson[]): string {
  return table(
    ['ID', 'NAME', 'STATUS', 'FIRMWARE', 'HARDWARE', 'CLIENT', 'LAST SEEN', 'LOCATION'],
    devices.map((d) => [
      d.id,
      d.name,
      d.status,
      d.firmware_version,
      d.hardware_type,
      clientOf(d),
      ago(d.last_seen),
      d.location,
    ]),
  );
}

export function registerDevices(program: Command, ctx: Ctx): void {
  const devices = program.command('devices').description('the device registry');
  registerAdmission(devices, ctx);
  registerDeviceTags(devices, ctx);
  registerExec(devices, ctx);
  registerDeviceConfig(devices, ctx);
  registerDeviceTelemetry(devices, ctx);

  devices
    .command('import')
    .argument('<file>', 'JSON file: {"now"?: instant, "devices": [...]} (the shape of the POS fixture)')
    .description('register or update devices in bulk')
    .action(async (file: string) => {
      const checked = checkImportFile(file, readImportFile(file), Date.now());
      // One request, one transaction on the server: the whole file is imported or none of it.
      const { created, updated } = await ctx
        .client()
        .request<{ created: number; updated: number }>('POST', '/api/v1/devices/import', checked)
        .catch((error: Error) => {
          throw new CliError(`${error.message}; nothing was imported`);
        });
      if (ctx.format() === 'json') printJson({ created, updated });
      else console.log(`imported ${checked.devices.length} devices: ${created} new, ${updated} updated`);
    });

  devices
    .command('ls')
    .description('list devices')
    .option('-f, --filter <expr>', "filter expression, e.g. 'status=online and firmware < 2.2.0'")
    .option('--limit <n>', 'how many devices at most', '100')
    .option('--sort <field>', 'id, name, last_seen, firmware, hardware or created', 'id')
    .option('--desc', 'descending order')
    .action(async (opts: { filter?: string; limit: string; sort: string; desc?: boolean }) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1)
        throw new CliError(`--limit: "${opts.limit}" is not a positive integer`);
      const found: DeviceJson[] = [];
      let cursor: string | null = null;
      do {
        const params = new URLSearchParams({
          limit: String(Math.min(1000, limit - found.length)),
          sort: opts.sort,
        });
        if (opts.filter) params.set('filter', opts.filter);
        if (opts.desc) params.set('order', 'desc');
        if (cursor) params.set('cursor', cursor);
        const page: { devices: DeviceJson[]; next_cursor: string | null } = await ctx
          .client()
          .request('GET', `/api/v1/devices?${params}`);
        found.push(...page.devices);
        cursor = page.next_cursor;
      } while (cursor && found.length < limit);
      if (ctx.format() === 'json') return printJson({ devices: found, next_cursor: cursor });
      console.log(deviceTable(found));
      if (cursor) console.error(`(more devices match: raise --limit to see them)`);
    });

  devices
    .command('show')
    .argument('<id>')
    .description("one device's facts, tags and telemetry")
    .action(async (id: string) => {
      const d = await ctx.client().request<DeviceJson>('GET', `/api/v1/devices/${encodeURIComponent(id)}`);
      if (ctx.format() === 'json') return printJson(d);
      const rows: Array<[string, string | null]> = [
        ['id', d.id],
        ['name', d.name],
        ['status', d.status],
        ['last seen', d.last_seen ? `${d.last_seen} (${ago(d.last_seen)})` : 'never'],
        ['firmware', d.firmware_version],
        ['hardware', d.hardware_type],
        ['location', d.location],
        ['timezone', d.timezone],
        ['customer', d.customer],
        ['enrolled', d.enrolled ? 'yes' : 'no'],
        ['admission', d.admission],
        ['registered', d.created_at],
        ['decommissioned', d.decommissioned_at],
        [
          'tags',
          Object.entries(d.tags)
            .map(([k, v]) => `${k}=${v}`)
            .join(', ') || null,
        ],
        ['battery', d.telemetry.battery === null ? null : `${d.telemetry.battery}%`],
        ['signal', d.telemetry.signal_strength === null ? null : `${d.telemetry.signal_strength} dBm`],
        ['position', d.telemetry.lat === null ? null : `${d.telemetry.lat}, ${d.telemetry.lon}`],
        ['config', await configLine(ctx.client(), id)],
      ];
      for (const [k, v] of rows) console.log(`${k.padEnd(15)}${v ?? '-'}`);
    });

  devices
    .command('decommission')
    .argument('<id>')
    .description('retire a device: its credential and certificates are revoked, its history kept')
    .action(async (id: string) => {
      const d = await ctx
        .client()
        .request<DeviceJson>('POST', `/api/v1/devices/${encodeURIComponent(id)}/decommission`);
      if (ctx.format() === 'json') printJson(d);
      else console.log(`${d.id} decommissioned`);
    });

  devices
    .command('certificates')
    .argument('<id>')
    .description("the device's certificates, newest first, revoked ones included")
    .action(async (id: string) => {
      const r = await ctx
        .client()
        .request<DeviceCertificateListJson>('GET', `/api/v1/devices/${encodeURIComponent(id)}/certificates`);
      if (ctx.format() === 'json') return printJson(r);
      console.log(
        table(
          ['SERIAL', 'ISSUER', 'NOT AFTER', 'REVOKED', 'FINGERPRINT'],
          r.certificates.map((k) => [k.serial, k.issuer, k.not_after, k.revoked_at, k.fingerprint]),
        ),
      );
    });

  devices
    .command('revoke')
    .argument('<id>')
    .description("revoke the device's certificates: refused at once on every replica, listed in the CRL")
    .action(async (id: string) => {
      const r = await ctx
        .client()
        .request<RevokedCertificatesJson>(
          'POST',
          `/api/v1/devices/${encodeURIComponent(id)}/revoke-certificates`,
        );
      if (ctx.format() === 'json') printJson(r);
      else console.log(`${r.device_id}: ${r.revoked} certificate${r.revoked === 1 ? '' : 's'} revoked`);
    });

  devices
    .command('credential')
    .argument('<id>')
    .description('issue a device a new credential (the old one stops working); printed once')
    .action(async (id: string) => {
      const r = await ctx
        .client()
        .request<{ device_id: string; credential: string }>(
          'POST',
          `/api/v1/devices/${encodeURIComponent(id)}/credential`,
        );
      if (ctx.format() === 'json') printJson(r);
      else console.log(r.credential);
    });
}
