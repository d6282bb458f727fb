/**
 * A FleetD server with a TUF repository (root made by the offline ceremony, copied in as an operator does), a
 * device that may download, and tuf-js as the independent TUF client refreshing from the running server. The
 * director's ceremony is installed the same way, into its own folder.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { initRoot, type RootInitResult } from '../../src/artifacts/tuf/tuf-root.js';
import { ManualClock } from '../../src/core/clock.js';
import { type RunningServer, startServer } from '../../src/server/serve.js';
import { tempDir } from './processes.js';

const execFileAsync = promisify(execFile);

export interface TufServer {
  server: RunningServer;
  clock: ManualClock;
  dataDir: string;
  ceremony: RootInitResult;
  admin: Record<string, string>;
  /** Calls the operator API; JSON in, the response out. */
  api(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Response>;
  close(): Promise<void>;
}

/** The ceremony (k of n root keys) on an "offline" folder, its root and online keys copied to the server. */
export async function tufServer(options: {
  start: number;
  threshold?: number;
  keys?: number;
  alertRulesFile?: string;
}): Promise<TufServer> {
  const offline = tempDir('fleetd-tuf-offline-');
  const ceremony = await initRoot({
    out: offline,
    threshold: options.threshold ?? 2,
    keys: options.keys ?? 3,
    now: options.start,
  });
  const dataDir = tufDataFolder(ceremony);
  const extra = options.alertRulesFile ? { alertRulesFile: options.alertRulesFile } : {};
  return startTufServer(dataDir, ceremony, new ManualClock(options.start), extra);
}

/** What an operator copies from a ceremony's offline folder to the server: the first root, the online keys. */
export type CeremonyFiles = Pick<RootInitResult, 'rootFile' | 'onlineKeyFiles'>;

/** Installs a ceremony's files in a data folder: `tuf/` for the image repository, `director/` for the director. */
export function installCeremony(
  ceremony: CeremonyFiles,
  dataDir: string,
  repository: 'tuf' | 'director',
): void {
  mkdirSync(join(dataDir, repository, 'root'), { recursive: true });
  mkdirSync(join(dataDir, repository, 'keys'), { recursive: true, mode: 0o700 });
  copyFileSync(ceremony.rootFile, join(dataDir, repository, 'root', '1.root.json'));
  for (const [role, file] of Object.entries(ceremony.onlineKeyFiles)) {
    copyFileSync(file, join(dataDir, repository, 'keys', `${role}.key`));
  }
}

/** A data folder with the ceremony's first root and online keys in place, as an operator installs them. */
export function tufDataFolder(ceremony: CeremonyFiles, dataDir = tempDir()): string {
  installCeremony(ceremony, dataDir, 'tuf');
  return dataDir;
}

/** A director ceremony (its own root keys, root and online keys) on an "offline" folder, installed in `dataDir`. */
export async function installDirector(dataDir: string, now: number): Promise<RootInitResult> {
  const ceremony = await initRoot({ out: tempDir('fleetd-director-offline-'), threshold: 1, keys: 2, now });
  installCeremony(ceremony, dataDir, 'director');
  return ceremony;
}

/** A server on a data folder that holds a TUF repository already (a first start, or a restart). */
export async function startTufServer(
  dataDir: string,
  ceremony: RootInitResult,
  clock: ManualClock,
  extra: { alertRulesFile?: string } = {},
): Promise<TufServer> {
  const server = await startServer({
    ...extra,
    port: 0,
    host: '127.0.0.1',
    dataDir,
    clock,
    logLevel: 'silent',
    scrubBytesPerSec: 0,
  });
  // The admin token is printed on the first start only; a restart reads it from the data folder.
  const token = server.adminToken ?? readFileSync(server.adminTokenFile, 'utf8').trim();
  const admin = { authorization: `Bearer ${token}` };
  const api = (method: string, path: string, body?: unknown, headers: Record<string, string> = admin) =>
    fetch(`${server.url}${path}`, {
      method,
      headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  return { server, clock, dataDir, ceremony, admin, api, close: () => server.close() };
}

/** Uploads a release and assigns it to a new device; the device's bearer header is returned. */
export async function deviceWithRelease(
  t: TufServer,
  deviceId: string,
  release: { name: string; version: string; bytes: Buffer },
): Promise<Record<string, string>> {
  const up = await fetch(
    `${t.server.url}/api/v1/artifacts?name=${release.name}&version=${release.version}&hardware=hw-a`,
    {
      method: 'POST',
      headers: { ...t.admin, 'content-type': 'application/octet-stream' },
      body: release.bytes,
    },
  );
  if (up.status !== 201) throw new Error(`upload: ${up.status} ${await up.text()}`);
  await t.api('POST', '/api/v1/devices/import', {
    devices: [{ id: deviceId, hardware_type: 'hw-a', firmware_version: '0.1.0' }],
  });
  const credential = (await (await t.api('POST', `/api/v1/devices/${deviceId}/credential`)).json()) as {
    credential: string;
  };
  const assign = await t.api('POST', '/api/v1/updates/assign', {
    release: `${release.name}@${release.version}`,
    devices: [deviceId],
  });
  if (assign.status !== 200) throw new Error(`assign: ${assign.status} ${await assign.text()}`);
  return { authorization: `Bearer ${credential.credential}` };
}

const CLIENT_PROGRAM = join(import.meta.dirname, 'tuf-client-program.mjs');

export type ClientResult =
  | { ok: true; target: string; length: number; sha256: string; file: string }
  | { ok: false; error: string };

/**
 * tuf-js as a separate program (tuf-client-program.mjs) that trusts `rootJson` (and what it has refreshed into
 * `metadataDir` since): `run` refreshes the metadata from the running server and downloads one target.
 */
export function tufClient(
  t: TufServer,
  headers: Record<string, string>,
  metadataDir = tempDir('fleetd-tuf-client-'),
  rootJson?: string,
): { run(target: string): Promise<ClientResult>; metadataDir: string } {
  if (rootJson !== undefined) writeFileSync(join(metadataDir, 'root.json'), rootJson);
  const credential = (headers.authorization ?? '').replace(/^Bearer /, '');
  const run = async (target: string): Promise<ClientResult> => {
    const args = [
      CLIENT_PROGRAM,
      `${t.server.url}/api/device/v1/tuf`,
      metadataDir,
      tempDir('fleetd-tuf-targets-'),
    ];
    // Asynchronous: the server answering it runs in this process.
    const { stdout } = await execFileAsync(process.execPath, [...args, target], {
      env: { ...process.env, FLEETD_DEVICE_CREDENTIAL: credential },
    }).catch((e: { stdout?: string; stderr?: string }) => {
      if (!e.stdout) throw new Error(`the TUF client program failed: ${e.stderr}`);
      return { stdout: e.stdout };
    });
    return JSON.parse(stdout.trim()) as ClientResult;
  };
  return { run, metadataDir };
}
