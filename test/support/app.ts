/**
 * An in-process FleetD app on a real SQLite file (or a given store) with an injected clock, for app.inject()
 * tests. Built by the server's own composition root (createServer), idle: no socket, no timers.
 */
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { FsBlobStore } from '../../src/artifacts/blob-store.js';
import type { DeltaBuilder } from '../../src/artifacts/delta-builder.js';
import { ManualClock } from '../../src/core/clock.js';
import { hashSecret, newSecret } from '../../src/registry/credentials.js';
import type { StatusSweeper } from '../../src/registry/status-sweeper.js';
import type { AbuseLimits } from '../../src/server/abuse/abuse-limits.js';
import type { AuthFailureWatchOptions } from '../../src/server/audit/auth-failure-watch.js';
import type { Keyring } from '../../src/server/keyring.js';
import { createServer } from '../../src/server/serve.js';
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
  /** The background delta builder (tests wait on its `idle()`). */
  deltas: DeltaBuilder | undefined;
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
    abuseLimits?: AbuseLimits;
    authFailureWatch?: AuthFailureWatchOptions;
  } = {},
): Promise<TestApp> {
  const clock = new ManualClock(start);
  const dataDir = tempDir();
  // A given store (e.g. one of forEachBackend's) runs the same app on PostgreSQL too.
  const store = options.store ?? (await openSqliteStore(join(dataDir, 'fleetd.db')));
  // Known before the server starts, so the composition root finds a token and makes none of its own.
  const adminToken = newSecret('admin');
  await store.createApiToken(
    { id: 'tok_admin', name: 'admin', role: 'admin', createdAt: start },
    hashSecret(adminToken),
  );
  const makeBlobs = options.blobs;
  const { app, keyring, sweeper, deltas } = await createServer({
    dataDir,
    store,
    clock,
    heartbeatIntervalSec: 300,
    maxArtifactBytes: 64 * 1024 * 1024,
    artifactOffload: options.artifactOffload,
    webhookAllowPrivate: options.webhookAllowPrivate ?? false,
    blobs: makeBlobs && ((folder) => makeBlobs(folder, clock)),
    logLevel: options.log?.level ?? 'silent',
    logStream: options.log,
    webRoot: options.webRoot,
    abuseLimits: options.abuseLimits,
    authFailureWatch: options.authFailureWatch,
  });
  return {
    dataDir,
    keyring,
    app,
    store,
    clock,
    sweeper,
    adminToken,
    admin: { authorization: `Bearer ${adminToken}` },
    deltas,
    async close() {
      deltas?.stop();
      await app.close();
      await store.close();
    },
  };
}
