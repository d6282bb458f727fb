/** GET /metrics: its own credential, the exposition format checked by Debian's promtool, and what it counts. */
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import {
  deviceCredential,
  hashSecret,
  newSecret,
  splitDeviceCredential,
} from '../src/registry/credentials.js';
import { createServer, type ServerParts } from '../src/server/serve.js';
import { openSqliteStore } from '../src/store/sqlite/connect.js';
import { tempDir } from './support/processes.js';

const START = Date.parse('2026-11-22T12:00:00Z');
const METRICS_TOKEN = 'metrics-0123456789abcdef0123456789abcdef';

let s: ServerParts;
let clock: ManualClock;
let admin: string;

beforeEach(async () => {
  clock = new ManualClock(START);
  const dataDir = tempDir();
  const store = await openSqliteStore(join(dataDir, 'fleetd.db'));
  admin = newSecret('admin');
  await store.createApiToken(
    { id: 'tok_admin', name: 'admin', role: 'admin', createdAt: START },
    hashSecret(admin),
  );
  const tokenFile = join(dataDir, 'metrics-token');
  writeFileSync(tokenFile, `${METRICS_TOKEN}\n`, { mode: 0o600 });
  s = await createServer({ dataDir, store, clock, logLevel: 'silent', metricsTokenFile: tokenFile });
});
afterEach(async () => {
  await s.app.close();
  await s.store.close();
});

const scrape = (authorization?: string) =>
  s.app.inject({ method: 'GET', url: '/metrics', headers: authorization ? { authorization } : {} });

it('answers 401 without a token or with an unknown one, 403 to a token whose role lacks metrics.read', async () => {
  const none = await scrape();
  expect(none.statusCode).toBe(401);
  expect(none.json()).toMatchObject({ error: { code: 'UNAUTHENTICATED' } });
  expect((await scrape('Bearer not-a-token')).statusCode).toBe(401);
  const viewer = newSecret('api');
  await s.store.createApiToken(
    { id: 'tok_v', name: 'viewer', role: 'viewer', createdAt: START },
    hashSecret(viewer),
  );
  // The viewer role reads metrics; a role that grants nothing (unknown, or deleted) does not.
  expect((await scrape(`Bearer ${viewer}`)).statusCode).toBe(200);
  const other = newSecret('api');
  await s.store.createApiToken(
    { id: 'tok_o', name: 'uploader', role: 'uploader', createdAt: START },
    hashSecret(other),
  );
  const refused = await scrape(`Bearer ${other}`);
  expect(refused.statusCode).toBe(403);
  expect(refused.json().error).toMatchObject({ code: 'FORBIDDEN' });
  expect(refused.json().error.message).toContain('metrics.read');
});

it('serves the metrics token and the admin token the exposition format', async () => {
  for (const token of [METRICS_TOKEN, admin]) {
    const r = await scrape(`Bearer ${token}`);
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(r.body).toContain('process_cpu_user_seconds_total');
  }
});

it('counts devices by status, hardware and firmware, heartbeats and routes; promtool accepts the scrape', async () => {
  await s.store.importDevices(
    [
      { id: 'pos-1', hardwareType: 'x200', firmwareVersion: '2.3.0', lastSeen: START - 60_000 },
      { id: 'pos-2', hardwareType: 'x200', firmwareVersion: '2.2.0', lastSeen: START - 3_600_000 },
      { id: 'pos-3', hardwareType: null, firmwareVersion: null, lastSeen: null },
    ],
    { now: START, thresholds: s.thresholds },
    'test',
  );
  const credential = deviceCredential('pos-1');
  const { secret } = splitDeviceCredential(credential)!;
  await s.store.setCredential('pos-1', hashSecret(secret), { now: START, thresholds: s.thresholds }, 'test');
  const hb = await s.app.inject({
    method: 'POST',
    url: '/api/device/v1/heartbeat',
    headers: { authorization: `Bearer ${credential}` },
    payload: { device_id: 'pos-1', firmware_version: '2.3.0' },
  });
  expect(hb.statusCode, hb.body).toBe(200);
  const forged = await s.app.inject({
    method: 'POST',
    url: '/api/device/v1/heartbeat',
    headers: { authorization: `Bearer ${deviceCredential('pos-1')}` },
    payload: { device_id: 'pos-1' },
  });
  expect(forged.statusCode).toBe(401);
  const body = (await scrape(`Bearer ${METRICS_TOKEN}`)).body;
  expect(body).toContain('fleetd_device_auth_failures_total 1');
  expect(body).toContain('fleetd_devices{status="online"} 1');
  expect(body).toContain('fleetd_devices{status="offline"} 1');
  expect(body).toContain('fleetd_devices{status="unknown"} 1');
  expect(body).toContain('fleetd_devices_by_hardware{hardware_type="x200"} 2');
  expect(body).toContain('fleetd_devices_by_hardware{hardware_type="none"} 1');
  expect(body).toContain('fleetd_devices_by_firmware{firmware="2.3.0"} 1');
  expect(body).toContain('fleetd_heartbeats_total 1');
  // The route pattern, never the URL with its ids.
  expect(body).toMatch(
    /fleetd_http_request_duration_seconds_count\{route="\/api\/device\/v1\/heartbeat",method="POST",status="2xx"\} 1/,
  );
  expect(body).toContain('fleetd_database_size_bytes');

  const check = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8' });
  expect(check.error, 'promtool is needed: apt-get install -y prometheus').toBeUndefined();
  expect(`${check.stdout}${check.stderr}`).toBe('');
  expect(check.status).toBe(0);
});

it('reuses its fleet-wide figures within the cache time, then answers them while it reads them again', async () => {
  const count = async () =>
    /fleetd_devices\{status="unknown"\} (\d+)/.exec((await scrape(`Bearer ${admin}`)).body)?.[1];
  expect(await count()).toBe('0');
  await s.store.importDevices([{ id: 'new-1' }], { now: START, thresholds: s.thresholds }, 'test');
  expect(await count()).toBe('0');
  clock.advance(10_000);
  // Past the cache time: the previous figures at once, and a new reading behind them.
  expect(await count()).toBe('0');
  await s.metrics.settled();
  expect(await count()).toBe('1');
});

it('ships Prometheus alerting rules over these metrics that promtool accepts', () => {
  const out = execFileSync('promtool', ['check', 'rules', 'examples/prometheus/alerts.yml'], {
    encoding: 'utf8',
  });
  expect(out).toMatch(/SUCCESS: \d+ rules found/);
});
