/**
 * The telemetry API in process: a device posts its report (refused when malformed, or sooner than the minimum
 * interval with 429 and Retry-After); the operator reads the series, the latest values and the inventory, and
 * filters the fleet by them.
 */
import { beforeEach, expect, it } from 'vitest';
import { deviceCredential, hashSecret, splitDeviceCredential } from '../src/registry/credentials.js';
import { type TestApp, testApp } from './support/app.js';

let t: TestApp;
const CREDENTIALS = { 'pos-1': deviceCredential('pos-1'), 'pos-2': deviceCredential('pos-2') };
const inventory = {
  os: 'Debian GNU/Linux 12 (bookworm)',
  kernel: '6.1.0-18-amd64',
  packages: [{ name: 'openssl', version: '3.0.9-1' }],
  interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:01', addresses: ['10.0.0.5/24'] }],
};

beforeEach(async () => {
  t = await testApp();
  const ctx = {
    now: t.clock.now(),
    thresholds: { offlineAfterMs: 600_000, abandonedAfterMs: 30 * 86_400_000 },
  };
  await t.store.importDevices([{ id: 'pos-1' }, { id: 'pos-2' }], ctx, 'test');
  for (const [id, credential] of Object.entries(CREDENTIALS)) {
    await t.store.setCredential(id, hashSecret(splitDeviceCredential(credential)!.secret), ctx, 'test');
  }
  return () => t.close();
});

const report = (device: keyof typeof CREDENTIALS, payload: object) =>
  t.app.inject({
    method: 'POST',
    url: '/api/device/v1/telemetry',
    headers: { authorization: `Bearer ${CREDENTIALS[device]}` },
    payload,
  });
const get = (url: string) => t.app.inject({ method: 'GET', url, headers: t.admin });

it('refuses malformed reports with a 4xx before writing anything', async () => {
  const bad = [
    { metrics: { 'bad name': 1 } },
    { metrics: { cpu: 'high' } },
    { metrics: {}, inventory: { os: 'x' } },
    { metrics: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`m${i}`, i])) },
    { metrics: {}, extra: true },
  ];
  for (const payload of bad) {
    const r = await report('pos-1', payload);
    expect(r.statusCode, JSON.stringify(payload)).toBe(400);
    expect(Object.keys(r.json().error)).toEqual(['code', 'message']);
  }
  const anonymous = await t.app.inject({
    method: 'POST',
    url: '/api/device/v1/telemetry',
    payload: { metrics: {} },
  });
  expect(anonymous.statusCode).toBe(401);
  expect(await t.store.telemetry.size()).toMatchObject({ samples: 0, latest: 0 });
});

it('takes a report a minute, shows the series and the inventory, and filters by them', async () => {
  const first = await report('pos-1', { metrics: { cpu_pct: 12.5, disk_free_pct: 8 }, inventory });
  expect(first.json()).toEqual({ accepted: true, retry_after: 60 });
  const early = await report('pos-1', { metrics: { cpu_pct: 50 } });
  expect(early.statusCode).toBe(429);
  expect(early.headers['retry-after']).toBe('60');
  expect(early.json().error.code).toBe('RATE_LIMITED');
  t.clock.advance(60_000);
  expect((await report('pos-1', { metrics: { cpu_pct: 30.5, disk_free_pct: 7 } })).statusCode).toBe(200);
  expect((await report('pos-2', { metrics: { disk_free_pct: 60 } })).statusCode).toBe(200);

  const series = (await get('/api/v1/devices/pos-1/telemetry')).json();
  expect(series.latest).toEqual([
    { name: 'cpu_pct', value: 30.5, at: new Date(t.clock.now()).toISOString() },
    { name: 'disk_free_pct', value: 7, at: new Date(t.clock.now()).toISOString() },
  ]);
  expect(
    series.series
      .find((s: { name: string }) => s.name === 'cpu_pct')
      .points.map((p: { avg: number }) => p.avg),
  ).toEqual([12.5, 30.5]);
  const hourly = (await get('/api/v1/devices/pos-1/telemetry?resolution=hourly&metric=cpu_pct')).json();
  expect(hourly.series).toEqual([
    {
      name: 'cpu_pct',
      points: [{ at: '2026-11-22T12:00:00.000Z', count: 2, min: 12.5, max: 30.5, avg: 21.5 }],
    },
  ]);

  const inv = await get('/api/v1/devices/pos-1/inventory');
  expect(inv.json()).toEqual({ device_id: 'pos-1', reported_at: '2026-11-22T12:00:00.000Z', ...inventory });
  expect((await get('/api/v1/devices/pos-2/inventory')).statusCode).toBe(404);
  expect((await get('/api/v1/devices/nope/telemetry')).statusCode).toBe(404);
  expect((await get('/api/v1/devices/pos-1/telemetry?since=1y')).statusCode).toBe(400);

  const matching = async (filter: string) =>
    (await get(`/api/v1/devices?filter=${encodeURIComponent(filter)}`))
      .json()
      .devices.map((d: { id: string }) => d.id);
  expect(await matching('telemetry.disk_free_pct < 10')).toEqual(['pos-1']);
  expect(await matching('inventory.package.openssl < 3.0.11')).toEqual(['pos-1']);
  expect(await matching('inventory.os != "Debian GNU/Linux 12 (bookworm)"')).toEqual(['pos-2']);
});
