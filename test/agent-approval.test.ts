/**
 * The agent in the approval queue, against the real server over TLS (--tls auto, --enrollment approve): without a
 * token it asks to join with a request secret it keeps (0600), waits at least the server's retry_after by its
 * injected clock while pending, and enrolls and heartbeats once an operator accepts it.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { Agent } from '../src/agent/agent.js';
import { silentLogger } from '../src/agent/log.js';
import { seededRandom } from '../src/agent/schedule.js';
import { generateKeyPair } from '../src/artifacts/signing.js';
import { ManualClock } from '../src/core/clock.js';
import { openSqliteStore } from '../src/store/sqlite/connect.js';
import { type MtlsServer, startMtlsServer } from './support/mtls-server.js';
import { tempDir } from './support/processes.js';

let server: MtlsServer | undefined;
afterEach(async () => {
  await server?.close();
  await server?.store.close();
});

it('waits while pending, then enrolls with the same request secret once accepted', async () => {
  server = await startMtlsServer(await openSqliteStore(join(tempDir(), 'fleetd.db')), {
    enrollment: 'approve',
  });
  const clock = new ManualClock(server.clock.now());
  const stateDir = tempDir('fleetd-agent-');
  const agent = new Agent({
    server: server.url,
    deviceId: 'till-7',
    hardwareType: 'pos-x200',
    stateDir,
    publicKey: generateKeyPair().publicKeyPem,
    requestApproval: true,
    enrollCertificate: false,
    ca: readFileSync(server.caFile, 'utf8'),
    clock,
    random: seededRandom(7),
    log: silentLogger,
  });

  const wait = await agent.runOnce();
  expect(wait).toBeGreaterThanOrEqual(60_000);
  const secretFile = join(stateDir, 'request-secret');
  expect(statSync(secretFile).mode & 0o777).toBe(0o600);
  const ctx = {
    now: server.clock.now(),
    thresholds: { offlineAfterMs: 600_000, abandonedAfterMs: 86_400_000 },
  };
  expect(await server.store.getDevice('till-7', ctx)).toMatchObject({ admission: 'pending', lastSeen: null });

  clock.advance(wait);
  expect(await agent.runOnce()).toBeGreaterThanOrEqual(60_000); // still pending: asked again, same secret
  const accepted = await server.app.inject({
    method: 'POST',
    url: '/api/v1/devices/accept',
    headers: server.admin,
    payload: { ids: ['till-7'] },
  });
  expect(accepted.json().moved).toBe(1);

  clock.advance(120_000);
  await agent.runOnce();
  expect(readFileSync(join(stateDir, 'credential'), 'utf8')).toMatch(/till-7/);
  const device = await server.store.getDevice('till-7', { ...ctx, now: server.clock.now() });
  expect(device).toMatchObject({ admission: 'accepted', hasCredential: true });
  expect(device?.lastSeen).not.toBeNull();
});
