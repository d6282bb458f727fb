/**
 * Remote configuration (docs/configuration.md): `fleetd config set NAME FILE [--filter EXPR | --device ID]
 * [--staged]`, `config ls`, `config show NAME`, `config rm NAME`; a staged version's `config staged NAME`,
 * `config release NAME VERSION`, `config promote NAME VERSION`, `config unstage NAME`; its rollout with a strategy
 * (config-rollouts.ts); and `fleetd devices config ID` (desired next to reported).
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { Static } from 'typebox';
import type {
  ConfigDocumentJson,
  ConfigList,
  ConfigSummary,
  DeviceConfigJson,
  ReleaseConfigReply,
  SetConfigReply,
  StagedConfigJson,
  StagedSummary,
} from '../protocol/config.js';
import { CliError, type Client } from './client.js';
import { registerConfigRollouts } from './config-rollouts.js';
import { ago, type OutputFormat, printJson, table } from './output.js';

interface Ctx {
  client(): Client;
  format(): OutputFormat;
}

const path = (name: string) => `/api/v1/config/${encodeURIComponent(name)}`;
const targetOf = (d: Pick<Static<typeof ConfigSummary>, 'target' | 'filter' | 'device_id'>) =>
  d.target === 'filter' ? d.filter : d.target === 'device' ? `device ${d.device_id}` : 'every device';

/** The document file: JSON, checked here so a typo is one line, not a server round trip. */
function readDocument(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new CliError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new CliError(`${file} is not JSON: ${(error as Error).message}`);
  }
}

export function registerConfig(program: Command, ctx: Ctx): void {
  const config = program
    .command('config')
    .description('remote configuration documents (docs/configuration.md)');
  config
    .command('set')
    .argument('<name>', 'document name')
    .argument('<file>', 'a JSON file holding one object')
    .option(
      '-f, --filter <expr>',
      "the devices it applies to, e.g. 'tag.region = west' (default: every device)",
    )
    .option('--device <id>', 'one device only')
    .option('--staged', 'stage the version: no device gets it until `config release` or `config promote`')
    .description('set a configuration document; devices get it on their next heartbeat')
    .action(
      async (name: string, file: string, opts: { filter?: string; device?: string; staged?: boolean }) => {
        if (opts.filter !== undefined && opts.device !== undefined) {
          throw new CliError('give --filter or --device, not both');
        }
        const body = {
          document: readDocument(file),
          ...(opts.filter !== undefined ? { filter: opts.filter } : {}),
          ...(opts.device !== undefined ? { device: opts.device } : {}),
          ...(opts.staged ? { staged: true } : {}),
        };
        const r = await ctx.client().request<Static<typeof SetConfigReply>>('PUT', path(name), body);
        if (ctx.format() === 'json') return printJson(r);
        const d = r.document;
        const what = r.staged ? 'staged version' : 'version';
        console.log(
          r.changed
            ? `${d.name}: ${what} ${d.version} for ${targetOf(d)} (${d.hash.slice(0, 12)})`
            : `${d.name}: unchanged, still ${what} ${d.version}`,
        );
      },
    );

  config
    .command('ls')
    .description('the configuration documents')
    .action(async () => {
      const r = await ctx.client().request<Static<typeof ConfigList>>('GET', '/api/v1/config');
      if (ctx.format() === 'json') return printJson(r);
      const staged = new Map(r.staged.map((d) => [d.name, d]));
      // A document staged before it was ever set shows its staged version alone.
      const rows = [
        ...r.documents,
        ...r.staged
          .filter((d) => !r.documents.some((x) => x.name === d.name))
          .map((d) => ({ ...d, version: null, updated_at: d.staged_at, updated_by: d.staged_by })),
      ].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      console.log(
        table(
          ['NAME', 'VERSION', 'STAGED', 'APPLIES TO', 'HASH', 'UPDATED', 'BY'],
          rows.map((d) => [
            d.name,
            d.version ?? '-',
            stagedCell(staged.get(d.name)),
            targetOf(d),
            d.hash.slice(0, 12),
            ago(d.updated_at),
            d.updated_by,
          ]),
        ),
      );
    });

  config
    .command('show')
    .argument('<name>', 'document name')
    .description('a configuration document with its content')
    .action(async (name: string) => {
      const d = await ctx.client().request<Static<typeof ConfigDocumentJson>>('GET', path(name));
      if (ctx.format() === 'json') return printJson(d);
      console.log(
        `${d.name}: version ${d.version} for ${targetOf(d)}, by ${d.updated_by} ${ago(d.updated_at)}`,
      );
      console.log(`hash ${d.hash}${d.scope ? `, within the scope ${d.scope}` : ''}`);
      console.log(JSON.stringify(d.document, null, 2));
    });

  config
    .command('rm')
    .argument('<name>', 'document name')
    .description('remove a configuration document; its devices are resolved again')
    .action(async (name: string) => {
      const d = await ctx.client().request<Static<typeof ConfigSummary>>('DELETE', path(name));
      if (ctx.format() === 'json') return printJson(d);
      console.log(`${d.name} removed (was version ${d.version})`);
    });

  registerStaged(config, ctx);
  registerConfigRollouts(config, ctx);
}

/** The STAGED column of `config ls`: the staged version and how far it got. */
function stagedCell(d: Static<typeof StagedSummary> | undefined): string {
  if (!d) return '-';
  const p = d.progress;
  return `${d.version} (${p.released} released, ${p.applied} applied, ${p.failed} failed)`;
}

/** A staged version: show it, release it to more devices, promote it to every device, or drop it. */
function registerStaged(config: Command, ctx: Ctx): void {
  const version = (text: string): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1) throw new CliError(`version '${text}': a whole number from 1`);
    return n;
  };
  const printStaged = (d: Static<typeof StagedConfigJson>) => {
    const current = d.current_version === null ? 'none yet' : `version ${d.current_version}`;
    console.log(
      `${d.name}: staged version ${d.version} for ${targetOf(d)}, by ${d.staged_by} ${ago(d.staged_at)}; the other devices keep ${current}`,
    );
    const p = d.progress;
    console.log(
      `released to ${p.released}: ${p.applied} applied, ${p.failed} failed, ${p.pending} not reported yet`,
    );
  };

  config
    .command('staged')
    .argument('<name>', 'document name')
    .description('a staged version with its content, and what the devices it was released to reported')
    .action(async (name: string) => {
      const d = await ctx.client().request<Static<typeof StagedConfigJson>>('GET', `${path(name)}/staged`);
      if (ctx.format() === 'json') return printJson(d);
      printStaged(d);
      console.log(JSON.stringify(d.document, null, 2));
    });

  config
    .command('release')
    .argument('<name>', 'document name')
    .argument('<version>', 'the staged version')
    .option('-f, --filter <expr>', 'only the devices of this filter')
    .option('--device <id>', 'one device only')
    .option('--count <n>', 'at most this many devices (a canary)')
    .description('release the staged version to more of the devices it applies to')
    .action(async (name: string, v: string, opts: { filter?: string; device?: string; count?: string }) => {
      if (opts.filter !== undefined && opts.device !== undefined) {
        throw new CliError('give --filter or --device, not both');
      }
      const body = {
        version: version(v),
        ...(opts.filter !== undefined ? { filter: opts.filter } : {}),
        ...(opts.device !== undefined ? { device: opts.device } : {}),
        ...(opts.count !== undefined ? { count: version(opts.count) } : {}),
      };
      const r = await ctx
        .client()
        .request<Static<typeof ReleaseConfigReply>>('POST', `${path(name)}/release`, body);
      if (ctx.format() === 'json') return printJson(r);
      console.log(`released to ${r.released} more device${r.released === 1 ? '' : 's'}`);
      printStaged(r.staged);
    });

  config
    .command('promote')
    .argument('<name>', 'document name')
    .argument('<version>', 'the staged version')
    .description("make the staged version the document's current version, for every device")
    .action(async (name: string, v: string) => {
      const d = await ctx
        .client()
        .request<Static<typeof ConfigDocumentJson>>('POST', `${path(name)}/promote`, { version: version(v) });
      if (ctx.format() === 'json') return printJson(d);
      console.log(`${d.name}: version ${d.version} for ${targetOf(d)} (${d.hash.slice(0, 12)})`);
    });

  config
    .command('unstage')
    .argument('<name>', 'document name')
    .description('drop the staged version: the devices it was released to go back to the current version')
    .action(async (name: string) => {
      const d = await ctx.client().request<Static<typeof StagedConfigJson>>('DELETE', `${path(name)}/staged`);
      if (ctx.format() === 'json') return printJson(d);
      console.log(
        `${d.name}: staged version ${d.version} dropped; ${d.progress.released} device${d.progress.released === 1 ? ' goes' : 's go'} back to the current version`,
      );
    });
}

/** `fleetd devices config ID`: the desired configuration next to what the device reported. */
export function registerDeviceConfig(devices: Command, ctx: Ctx): void {
  devices
    .command('config')
    .argument('<id>', 'device id')
    .description("a device's desired configuration next to what it reported, and whether it drifts")
    .action(async (id: string) => {
      const s = await ctx
        .client()
        .request<Static<typeof DeviceConfigJson>>('GET', `/api/v1/devices/${encodeURIComponent(id)}/config`);
      if (ctx.format() === 'json') return printJson(s);
      const stamp = (x: { version: string; hash: string; at: string } | null) =>
        x && `${x.version} (${x.hash.slice(0, 12)}), ${ago(x.at)}`;
      const last = s.last_report;
      const rows: Array<[string, string | null]> = [
        ['desired', stamp(s.desired) ?? 'nothing (no document applies)'],
        ['applied', stamp(s.applied)],
        ['last report', last && `${last.result} ${last.hash.slice(0, 12)}, ${ago(last.at)}`],
        ['drift', s.drift ? 'yes' : 'no'],
      ];
      for (const [k, v] of rows) console.log(`${k.padEnd(13)}${v ?? '-'}`);
      if (last?.output) console.log(`output:\n${last.output.trimEnd()}`);
    });
}

/** `devices show`'s config line: the desired version and whether it drifts; null without config.read. */
export async function configLine(client: Client, id: string): Promise<string | null> {
  try {
    const s = await client.request<Static<typeof DeviceConfigJson>>(
      'GET',
      `/api/v1/devices/${encodeURIComponent(id)}/config`,
    );
    if (!s.desired) return null;
    return `${s.desired.version}${s.drift ? ' (drift: not applied yet)' : ' (applied)'}`;
  } catch {
    // The role may lack config.read: the rest of the device still shows.
    return null;
  }
}
