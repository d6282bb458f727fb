/**
 * `fleetd devices provision ID --out FILE.tar.gz` (or `--csv FILE --out-dir DIR` for many): a provisioning
 * bundle per device, its CA the `--ca` file the CLI trusts the server with, else the server's (/api/v1/pki/ca) (the format: src/agent/bundle.ts; the walk-through: docs/provisioning.md). Everything
 * is checked and fetched before the first token is made or file written.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import * as tar from 'tar';
import { BUNDLE_FILES, type BundleConfig, DEFAULT_BUNDLE_STATE_DIR, systemdUnit } from '../agent/bundle.js';
import { KEY_ALGORITHMS, type KeyAlgorithm } from '../agent/identity.js';
import { loadPublicKey } from '../agent/verify.js';
import { parseRoot } from '../artifacts/tuf/tuf-root.js';
import { DeviceId } from '../protocol/common.js';
import { CliError, type Client } from './client.js';
import { type OutputFormat, printJson } from './output.js';

interface Ctx {
  client(): Client;
  format(): OutputFormat;
}

interface ProvisionFlags {
  out?: string;
  csv?: string;
  outDir?: string;
  hardware?: string;
  deviceServer?: string;
  publicKey?: string;
  keyId?: string;
  stateDir: string;
  keyType?: string;
  mqtt?: string;
  expires?: string;
  bundlePath: string;
  tufRoot?: string;
  directorRoot?: string;
}

/** One bundle to make: the device and where its file goes. */
interface Target {
  id: string;
  hardware: string | undefined;
  out: string;
}

/** The protocol's own device id rule, so a bundle is never made for an id the server would refuse. */
const ID_PATTERN = new RegExp((DeviceId as { pattern?: string }).pattern ?? '^.+$');

export function registerProvision(program: Command, ctx: Ctx): void {
  const devices = program.commands.find((c) => c.name() === 'devices');
  if (!devices) throw new Error('the devices command must be registered before provision');
  devices
    .command('provision')
    .argument('[id]', 'the device to provision (or --csv for many)')
    .description(
      'make a provisioning bundle: server URL, FleetD CA, signing key, one-use token, systemd unit',
    )
    .option('--out <file>', 'the bundle to write, e.g. pos-001.tar.gz (with an id)')
    .option('--csv <file>', 'many devices: a CSV with a header line, columns id and hardware')
    .option('--out-dir <dir>', 'with --csv: where to write <id>.tar.gz for each device')
    .option(
      '--hardware <type>',
      "the device's hardware type (default: the registry's, for a registered device)",
    )
    .option('--device-server <url>', 'the https URL devices reach the server at (default: --server)')
    .option(
      '--public-key <file>',
      'the release-signing public key to pin (default: the one the server trusts)',
    )
    .option('--key-id <id>', "which of the server's signing keys to pin, when it trusts several")
    .option('--state-dir <dir>', "the agent's state folder on the device", DEFAULT_BUNDLE_STATE_DIR)
    .option('--key-type <type>', 'the device key: ecdsa-p256 (default) or ed25519')
    .option('--mqtt <url>', 'an MQTT broker the agent should use (mqtts://…)')
    .option('--expires <duration>', 'how long the enrollment token in the bundle stays valid (default 7d)')
    .option(
      '--bundle-path <path>',
      'where the bundle will be on the device (for the systemd unit)',
      '/etc/fleetd/bundle.tar.gz',
    )
    .option(
      '--tuf-root <file>',
      "the TUF root devices trust, from the offline ceremony (default: the server's current root, if it has TUF)",
    )
    .option(
      '--director-root <file>',
      "the director's root devices trust, from its offline ceremony (default: the server's current director root, if it has one)",
    )
    .action(async (id: string | undefined, flags: ProvisionFlags) => {
      const targets = plan(id, flags);
      const client = ctx.client();
      // Fetched once for every device, before anything is created.
      const server = deviceServer(flags.deviceServer ?? client.server);
      // `--ca` is the program's option (the CA the CLI trusts the server with): the same FleetD CA.
      const caPem = await fleetdCa(client, program.opts<{ ca?: string }>().ca);
      const publicKeyPem = await signingKey(client, flags);
      const tufRootJson = await tufRoot(client, flags.tufRoot);
      const directorRootJson = await directorRoot(client, flags.directorRoot);
      if (flags.keyType !== undefined && !KEY_ALGORITHMS.includes(flags.keyType as KeyAlgorithm)) {
        throw new CliError(`--key-type: "${flags.keyType}" is not one of ${KEY_ALGORITHMS.join(', ')}`);
      }
      const hardware = new Map<string, string>();
      for (const t of targets) hardware.set(t.id, t.hardware ?? (await registeredHardware(client, t.id)));
      const made: Array<{ device_id: string; bundle: string; token_id: string; expires_at: string }> = [];
      for (const t of targets) {
        const token = await client.request<{ id: string; token: string; expires_at: string }>(
          'POST',
          '/api/v1/enrollment-tokens',
          {
            uses: 1,
            claim: `id = "${t.id}"`,
            ...(flags.expires !== undefined ? { expires_in: flags.expires } : {}),
          },
        );
        const config: BundleConfig = {
          server,
          device_id: t.id,
          hardware_type: hardware.get(t.id)!,
          state_dir: flags.stateDir,
          ...(flags.keyType !== undefined ? { key_algorithm: flags.keyType as KeyAlgorithm } : {}),
          ...(flags.mqtt !== undefined ? { mqtt: flags.mqtt } : {}),
        };
        await writeBundle(t.out, {
          config,
          caPem,
          publicKeyPem,
          token: token.token,
          unit: systemdUnit(flags.bundlePath),
          ...(tufRootJson !== undefined ? { tufRootJson } : {}),
          ...(directorRootJson !== undefined ? { directorRootJson } : {}),
        });
        made.push({ device_id: t.id, bundle: t.out, token_id: token.id, expires_at: token.expires_at });
      }
      if (ctx.format() === 'json') return printJson({ bundles: made });
      for (const m of made) {
        console.log(
          `${m.bundle}: device ${m.device_id}, one-use enrollment token ${m.token_id} (expires ${m.expires_at})`,
        );
      }
      console.error(
        'each bundle holds a secret token (mode 0600): copy it to its device only, then delete it here',
      );
    });
}

/** The bundles to write, from the arguments alone: nothing is asked of the server until they are all right. */
function plan(id: string | undefined, flags: ProvisionFlags): Target[] {
  if (flags.csv !== undefined) {
    if (id !== undefined || flags.out !== undefined)
      throw new CliError('--csv takes --out-dir, not an id or --out');
    if (flags.outDir === undefined)
      throw new CliError('--csv needs --out-dir <dir> to write the bundles into');
    if (!existsSync(flags.outDir)) throw new CliError(`--out-dir: ${flags.outDir} does not exist`);
    const targets = readCsv(flags.csv).map((row) => ({
      ...row,
      out: join(flags.outDir!, `${row.id}.tar.gz`),
    }));
    for (const t of targets) refuseOverwrite(t.out);
    return targets;
  }
  if (id === undefined) throw new CliError('give a device id, or --csv FILE --out-dir DIR');
  if (flags.out === undefined) throw new CliError('--out <file> is required: where to write the bundle');
  checkId(id, 'the device id');
  refuseOverwrite(flags.out);
  return [{ id, hardware: flags.hardware, out: flags.out }];
}

function checkId(id: string, where: string): void {
  if (!ID_PATTERN.test(id))
    throw new CliError(`${where}: "${id}" is not a device id (letters, digits, . _ : -)`);
}

function refuseOverwrite(file: string): void {
  if (existsSync(file)) throw new CliError(`${file} exists already; a bundle is never overwritten`);
}

/** id,hardware per line after a header naming the columns; hardware may be empty (then the registry's). */
function readCsv(file: string): Array<{ id: string; hardware: string | undefined }> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new CliError(
      `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
  const lines = text.split(/\r?\n/).filter((line) => line.trim() !== '');
  const header = (lines.shift() ?? '').split(',').map((h) => h.trim().toLowerCase());
  const idAt = header.indexOf('id');
  const hwAt = header.findIndex((h) => h === 'hardware' || h === 'hardware_type');
  if (idAt < 0)
    throw new CliError(`${file}: the first line must name the columns, with "id" (and "hardware")`);
  const seen = new Set<string>();
  const rows = lines.map((line, i) => {
    const cells = line.split(',').map((c) => c.trim());
    const id = cells[idAt] ?? '';
    checkId(id, `${file} line ${i + 2}`);
    if (seen.has(id)) throw new CliError(`${file} line ${i + 2}: device ${id} is listed twice`);
    seen.add(id);
    const hardware = hwAt >= 0 && cells[hwAt] ? cells[hwAt] : undefined;
    return { id, hardware };
  });
  if (rows.length === 0) throw new CliError(`${file} lists no devices`);
  return rows;
}

function deviceServer(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CliError(`--device-server: "${url}" is not a URL`);
  }
  if (parsed.protocol !== 'https:') {
    throw new CliError(
      `a bundle is for mutual TLS and ${url} is not https: start the server with --tls auto, or give --device-server https://…`,
    );
  }
  return url.replace(/\/+$/, '');
}

/** The FleetD CA: the --ca file, or the server's (answered as PEM, or as JSON with a PEM field). */
async function fleetdCa(client: Client, file: string | undefined): Promise<string> {
  let text: string;
  if (file !== undefined) {
    text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new CliError(`--ca: cannot read ${file}: ${e.code ?? e.message}`);
    });
  } else {
    const dir = await mkdtemp(join(tmpdir(), 'fleetd-ca-'));
    try {
      await client.download('/api/v1/pki/ca', join(dir, 'ca'));
      text = await readFile(join(dir, 'ca'), 'utf8');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    if (text.trimStart().startsWith('{')) {
      const json = JSON.parse(text) as Record<string, unknown>;
      text = String(
        Object.values(json).find((v) => typeof v === 'string' && v.includes('BEGIN CERTIFICATE')) ?? '',
      );
    }
  }
  const pem = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.join('\n');
  try {
    if (pem === undefined) throw new Error('no PEM certificate');
    new X509Certificate(pem);
  } catch (e) {
    throw new CliError(
      `the FleetD CA ${file ?? 'the server gave'} is not a certificate: ${(e as Error).message}`,
    );
  }
  return `${pem}\n`;
}

/**
 * The TUF root for the bundle: the file given (the ceremony's, which trusts no server), or the root the server
 * trusts now (it checked the chain up to it); none when the server has no TUF repository.
 */
async function tufRoot(client: Client, file: string | undefined): Promise<string | undefined> {
  let text: string;
  if (file !== undefined) {
    text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new CliError(`--tuf-root: cannot read ${file}: ${e.code ?? e.message}`);
    });
  } else {
    let version: number;
    try {
      version = (await client.request<{ root_version: number }>('GET', '/api/v1/tuf')).root_version;
    } catch (e) {
      if (e instanceof CliError && /\(NOT_FOUND\)$/.test(e.message)) return undefined;
      throw e;
    }
    text = JSON.stringify(await client.request<unknown>('GET', `/api/device/v1/tuf/${version}.root.json`));
  }
  try {
    parseRoot(text, file ?? "the server's root");
  } catch (e) {
    throw new CliError(`--tuf-root: ${(e as Error).message}`);
  }
  return text;
}

/**
 * The director's root for the bundle: the file given (its ceremony's), or the director root the server trusts
 * now; none when the server has no director.
 */
async function directorRoot(client: Client, file: string | undefined): Promise<string | undefined> {
  let text: string;
  if (file !== undefined) {
    text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new CliError(`--director-root: cannot read ${file}: ${e.code ?? e.message}`);
    });
  } else {
    try {
      text = JSON.stringify(await client.request<unknown>('GET', '/api/v1/tuf/director/root'));
    } catch (e) {
      if (e instanceof CliError && /\(NOT_FOUND\)$/.test(e.message)) return undefined;
      throw e;
    }
  }
  try {
    parseRoot(text, file ?? "the server's director root");
  } catch (e) {
    throw new CliError(`--director-root: ${(e as Error).message}`);
  }
  return text;
}

/** The release-signing public key to pin: the file given, or the server's (one, or the one --key-id names). */
async function signingKey(client: Client, flags: ProvisionFlags): Promise<string> {
  if (flags.publicKey !== undefined) {
    const text = await readFile(flags.publicKey, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new CliError(`--public-key: cannot read ${flags.publicKey}: ${e.code ?? e.message}`);
    });
    try {
      loadPublicKey(text);
    } catch (e) {
      throw new CliError(`--public-key: ${(e as Error).message}`);
    }
    return text;
  }
  const { keys } = await client.request<{ keys: Array<{ key_id: string; public_key: string }> }>(
    'GET',
    '/api/v1/keys',
  );
  const chosen = flags.keyId !== undefined ? keys.filter((k) => k.key_id === flags.keyId) : keys;
  if (chosen.length === 1) return chosen[0]!.public_key;
  const ids = keys.map((k) => k.key_id).join(', ') || 'none';
  throw new CliError(
    flags.keyId !== undefined
      ? `--key-id: the server trusts no signing key ${flags.keyId} (it trusts: ${ids})`
      : `the server trusts ${keys.length} signing keys (${ids}): choose the one devices pin with --key-id or --public-key`,
  );
}

async function registeredHardware(client: Client, id: string): Promise<string> {
  const device = await client
    .request<{ hardware_type: string | null }>('GET', `/api/v1/devices/${encodeURIComponent(id)}`)
    .catch(() => undefined);
  if (!device?.hardware_type) {
    throw new CliError(
      `device ${id}: no hardware type is registered for it; give --hardware TYPE (or a hardware column)`,
    );
  }
  return device.hardware_type;
}

/** Writes the bundle: staged in a private folder with each file's mode, packed, the result made 0600. */
async function writeBundle(
  out: string,
  b: {
    config: BundleConfig;
    caPem: string;
    publicKeyPem: string;
    token: string;
    unit: string;
    tufRootJson?: string;
    directorRootJson?: string;
  },
): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'fleetd-bundle-'));
  try {
    const files: Array<[string, string, number]> = [
      [BUNDLE_FILES.config, `${JSON.stringify(b.config, null, 2)}\n`, 0o644],
      [BUNDLE_FILES.ca, b.caPem, 0o644],
      [BUNDLE_FILES.publicKey, b.publicKeyPem, 0o644],
      [BUNDLE_FILES.enrollToken, `${b.token}\n`, 0o600],
      [BUNDLE_FILES.unit, b.unit, 0o644],
      ...(b.tufRootJson !== undefined
        ? [[BUNDLE_FILES.tufRoot, b.tufRootJson, 0o644] as [string, string, number]]
        : []),
      ...(b.directorRootJson !== undefined
        ? [[BUNDLE_FILES.directorRoot, b.directorRootJson, 0o644] as [string, string, number]]
        : []),
    ];
    for (const [name, text, mode] of files) {
      await writeFile(join(dir, name), text, { mode });
      await chmod(join(dir, name), mode); // the umask may have changed writeFile's mode
    }
    // The archive holds a token: it is private from its first byte.
    await writeFile(out, '', { mode: 0o600, flag: 'wx' });
    await tar.c(
      { gzip: true, file: out, cwd: dir, portable: true },
      files.map(([name]) => name),
    );
    await chmod(out, 0o600);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
