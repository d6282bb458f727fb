/**
 * An in-process FleetD app on a real SQLite file (or a given store) with an injected clock, for app.inject()
 * tests. Built by the server's own composition root (createServer), idle: no socket, no timers.
 */
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { FsBlobStore } from '../../src/artifacts/blob-store.js';
import type { DeltaBuilder } from '../../src/artifacts/delta-builder.js';
import { ManualClock } from '../../src/core/clock.js';
import type { PacingTime } from '../../src/core/token-bucket.js';
import type { RolloutEngine } from '../../src/engine/rollout-engine.js';
import { hashSecret, newSecret } from '../../src/registry/credentials.js';
import type { StatusSweeper } from '../../src/registry/status-sweeper.js';
import type { AbuseLimits } from '../../src/server/abuse/abuse-limits.js';
import type { AuthFailureWatchOptions } from '../../src/server/audit/auth-failure-watch.js';
import type { DeliveryWorker } from '../../src/server/delivery/delivery-worker.js';
import type { EgressLimit } from '../../src/server/egress-limit.js';
import type { Keyring } from '../../src/server/keyring.js';
import { createServer } from '../../src/server/serve.js';
import type { OidcSignIn } from '../../src/server/sessions/oidc-sign-in.js';
import type { SignInPolicies } from '../../src/server/sessions/password-sign-in.js';
import type { SignedArtifactUrls } from '../../src/server/signed-artifact-urls.js';
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
  /** The rollout engine, idle: tests tick it. */
  engine: RolloutEngine;
  /** The agentless delivery worker, idle: tests run its passes and wait on its `idle()`. */
  delivery: DeliveryWorker;
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
    /** `approve`: tokenless enrollment waits in the approval queue. */
    enrollment?: 'token' | 'approve';
    /** Public keys a signed Mender artifact must verify with. */
    menderArtifactKeyFiles?: string[];
    /** `mtls`: devices by client certificate only. */
    deviceAuth?: 'any' | 'mtls';
    /** Signed artifact links on a cache origin (docs/serving-artifacts.md). */
    signedUrls?: SignedArtifactUrls;
    /** The fleet-wide egress cap (docs/bandwidth.md). */
    egress?: EgressLimit;
    /** The time per-download rate limits are paced by (virtual in tests). */
    pacing?: PacingTime;
    oidc?: OidcSignIn;
    /** Session lifetimes and the sign-in lock-out (`--session-*`, `--lockout-*`). */
    signIn?: SignInPolicies;
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
  const { app, keyring, sweeper, deltas, engine, delivery } = await createServer({
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
    ...(options.enrollment ? { enrollment: options.enrollment } : {}),
    ...(options.menderArtifactKeyFiles ? { menderArtifactKeyFiles: options.menderArtifactKeyFiles } : {}),
    ...(options.deviceAuth ? { deviceAuth: options.deviceAuth } : {}),
    signedUrls: options.signedUrls,
    egress: options.egress,
    pacing: options.pacing,
    oidcSignIn: options.oidc,
    signIn: options.signIn,
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
    engine,
    delivery,
    async close() {
      deltas?.stop();
      await delivery.stop();
      await app.close();
      await store.close();
    },
  };
}
