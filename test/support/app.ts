/** An in-process FleetD app on a real SQLite file with an injected clock, for app.inject() tests. */
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { FsBlobStore } from '../../src/artifacts/blob-store.js';
import { ManualClock } from '../../src/core/clock.js';
import { DEFAULT_THRESHOLDS } from '../../src/core/device.js';
import { hashSecret, newSecret } from '../../src/registry/credentials.js';
import { HeartbeatBatcher } from '../../src/registry/heartbeat-batcher.js';
import { ReportBatcher } from '../../src/registry/report-batcher.js';
import { StatusSweeper } from '../../src/registry/status-sweeper.js';
import { buildApp } from '../../src/server/app.js';
import { Keyring } from '../../src/server/keyring.js';
import { openSqliteStore } from '../../src/store/sqlite/connect.js';
import type { Store } from '../../src/store/store.js';
import { tempDir } from './processes.js';

export interface TestApp {
  dataDir: string;
  keyring: Keyring;
  app: FastifyInstance;
  store: Store;
  clock: ManualClock;
  sweeper: StatusSweeper;
  adminToken: string;
  /** Authorization header for the admin token. */
  admin: { authorization: string };
  close(): Promise<void>;
}

export async function testApp(
  start = Date.parse('2026-11-22T12:00:00Z'),
  options: {
    artifactOffload?: string;
    store?: Store;
    webhookAllowPrivate?: boolean;
    /** The app's blob store, in place of a plain one in its data folder. */
    blobs?: (dataDir: string, clock: ManualClock) => FsBlobStore;
    webRoot?: string;
    /** Log lines at this level go to `write` (default: none logged). */
    log?: { level: string; write(line: string): void };
  } = {},
): Promise<TestApp> {
  const clock = new ManualClock(start);
  const dataDir = tempDir();
  // A given store (e.g. one of forEachBackend's) runs the same app on PostgreSQL too.
  const store = options.store ?? (await openSqliteStore(join(dataDir, 'fleetd.db')));
  const keyring = await Keyring.open({ dataDir, serverSigning: true, trustedKeyFiles: [] });
  const adminToken = newSecret('admin');
  await store.createApiToken(
    { id: 'tok_admin', name: 'admin', role: 'admin', createdAt: start },
    hashSecret(adminToken),
  );
  const heartbeats = new HeartbeatBatcher(store, clock, DEFAULT_THRESHOLDS);
  const app = await buildApp(
    {
      store,
      clock,
      thresholds: DEFAULT_THRESHOLDS,
      heartbeats,
      reports: new ReportBatcher(store, clock, DEFAULT_THRESHOLDS),
      heartbeatIntervalSec: 300,
      blobs: options.blobs?.(dataDir, clock) ?? new FsBlobStore(dataDir, clock),
      keyring,
      maxArtifactBytes: 64 * 1024 * 1024,
      artifactOffload: options.artifactOffload,
      webhookAllowPrivate: options.webhookAllowPrivate,
    },
    {
      logLevel: options.log?.level ?? 'silent',
      ...(options.log === undefined ? {} : { logStream: options.log }),
      ...(options.webRoot === undefined ? {} : { webRoot: options.webRoot }),
    },
  );
  const sweeper = new StatusSweeper(store, clock, DEFAULT_THRESHOLDS, app.log);
  return {
    dataDir,
    keyring,
    app,
    store,
    clock,
    sweeper,
    adminToken,
    admin: { authorization: `Bearer ${adminToken}` },
    async close() {
      await app.close();
      await store.close();
    },
  };
}
