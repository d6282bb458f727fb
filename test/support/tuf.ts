/**
 * A FleetD server with a TUF repository (root made by the offline ceremony, copied in as an operator does), a
 * device that may download, and tuf-js as the independent TUF client refreshing from the running server.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BaseFetcher, Updater } from 'tuf-js';
// Not re-exported by the package's index; the Updater tells "no newer root" (404) by this type.
import { DownloadHTTPError } from 'tuf-js/dist/error.js';
import { initRoot, type RootInitResult } from '../../src/artifacts/tuf/tuf-root.js';
import { ManualClock } from '../../src/core/clock.js';
import { type RunningServer, startServer } from '../../src/server/serve.js';
import { tempDir } from './processes.js';

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
}): Promise<TufServer> {
  const offline = tempDir('fleetd-tuf-offline-');
  const ceremony = await initRoot({
    out: offline,
    threshold: options.threshold ?? 2,
    keys: options.keys ?? 3,
    now: options.start,
  });
  const dataDir = tempDir();
  mkdirSync(join(dataDir, 'tuf', 'root'), { recursive: true });
  mkdirSync(join(dataDir, 'tuf', 'keys'), { recursive: true, mode: 0o700 });
  copyFileSync(ceremony.rootFile, join(dataDir, 'tuf', 'root', '1.root.json'));
  for (const [role, file] of Object.entries(ceremony.onlineKeyFiles)) {
    copyFileSync(file, join(dataDir, 'tuf', 'keys', `${role}.key`));
  }
  return startTufServer(dataDir, ceremony, new ManualClock(options.start));
}

/** A server on a data folder that holds a TUF repository already (a first start, or a restart). */
export async function startTufServer(
  dataDir: string,
  ceremony: RootInitResult,
  clock: ManualClock,
): Promise<TufServer> {
  const server = await startServer({
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

/** tuf-js's fetcher with the device's credential on every request (targets need it; metadata does not). */
class DeviceFetcher extends BaseFetcher {
  constructor(private readonly headers: Record<string, string>) {
    super();
  }
  async fetch(url: string): Promise<ReadableStream<Uint8Array<ArrayBuffer>>> {
    const response = await fetch(url, { headers: this.headers });
    if (!response.ok || !response.body) {
      throw new DownloadHTTPError(`HTTP ${response.status} for ${url}`, response.status);
    }
    return response.body as ReadableStream<Uint8Array<ArrayBuffer>>;
  }
}

/** A client that trusts `rootJson` (and what it has refreshed into `metadataDir` since). */
export function tufClient(
  t: TufServer,
  headers: Record<string, string>,
  metadataDir = tempDir('fleetd-tuf-client-'),
  rootJson?: string,
): { updater: Updater; metadataDir: string; targetDir: string } {
  if (rootJson !== undefined) writeFileSync(join(metadataDir, 'root.json'), rootJson);
  const targetDir = tempDir('fleetd-tuf-targets-');
  const updater = new Updater({
    metadataDir,
    metadataBaseUrl: `${t.server.url}/api/device/v1/tuf`,
    targetDir,
    targetBaseUrl: `${t.server.url}/api/device/v1/tuf/targets`,
    fetcher: new DeviceFetcher(headers),
    config: { fetchRetries: 0 },
  });
  return { updater, metadataDir, targetDir };
}
