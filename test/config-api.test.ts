/**
 * The remote configuration API in process: a document no device should get is refused with a 4xx before anything
 * is written; viewers read and operators write; a scoped token sees and changes its own documents only; a
 * device is handed its merged document in its heartbeat answer until it reports on it, and its report clears drift.
 */
import { beforeEach, expect, it } from 'vitest';
import { deviceCredential, hashSecret, splitDeviceCredential } from '../src/registry/credentials.js';
import { type TestApp, testApp } from './support/app.js';

let t: TestApp;
const CREDENTIALS = { 'pos-1': deviceCredential('pos-1'), 'pos-2': deviceCredential('pos-2') };
const tokens: Record<'viewer' | 'west', string> = { viewer: '', west: '' };

beforeEach(async () => {
  t = await testApp();
  const ctx = {
    now: t.clock.now(),
    thresholds: { offlineAfterMs: 600_000, abandonedAfterMs: 30 * 86_400_000 },
  };
  await t.store.importDevices(
    [
      { id: 'pos-1', tags: { region: 'west' } },
      { id: 'pos-2', tags: { region: 'east' } },
    ],
    ctx,
    'test',
  );
  for (const [id, credential] of Object.entries(CREDENTIALS)) {
    await t.store.setCredential(id, hashSecret(splitDeviceCredential(credential)!.secret), ctx, 'test');
  }
  const make = async (name: string, role: string, scope?: string) =>
    (await call(t.admin, 'POST', '/api/v1/tokens', { name, role, ...(scope ? { scope } : {}) })).json()
      .token as string;
  tokens.viewer = await make('support', 'viewer');
  tokens.west = await make('west-ops', 'operator', 'tag.region=west');
  return () => t.close();
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const call = (
  headers: Record<string, string>,
  method: 'GET' | 'PUT' | 'POST' | 'DELETE',
  url: string,
  payload?: unknown,
) => t.app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload: payload as object }) });
const heartbeat = (device: keyof typeof CREDENTIALS) =>
  call(bearer(CREDENTIALS[device]), 'POST', '/api/device/v1/heartbeat', { device_id: device });

it('refuses a document no device should get, before writing anything', async () => {
  const big = { blob: 'x'.repeat(70_000) };
  const bad: Array<[string, unknown]> = [
    ['base', { document: [1, 2] }],
    ['base', { document: 'text' }],
    ['base', { document: big }],
    ['base', { document: {}, filter: 'tag.region = (' }],
    ['base', { document: {}, filter: 'tag.region = west', device: 'pos-1' }],
    ['base', { document: {}, extra: 1 }],
    ['-bad name', { document: {} }],
  ];
  for (const [name, payload] of bad) {
    const r = await call(t.admin, 'PUT', `/api/v1/config/${encodeURIComponent(name)}`, payload);
    expect(r.statusCode, JSON.stringify(payload).slice(0, 80)).toBe(400);
    expect(Object.keys(r.json().error)).toEqual(expect.arrayContaining(['code', 'message']));
  }
  const unknown = await call(t.admin, 'PUT', '/api/v1/config/x', { document: {}, device: 'nope' });
  expect(unknown.statusCode).toBe(404);
  expect((await call(t.admin, 'GET', '/api/v1/config')).json()).toEqual({ documents: [], staged: [] });
  const events = await t.store.listEvents({ after: 0, limit: 100 });
  expect(events.filter((e) => e.type.startsWith('config.'))).toEqual([]);
});

it('lets viewers read and operators write, each within its scope', async () => {
  const set = await call(t.admin, 'PUT', '/api/v1/config/base', { document: { ntp: 'pool' } });
  expect(set.statusCode).toBe(200);
  expect(set.json()).toMatchObject({
    changed: true,
    document: { name: 'base', version: 1, target: 'fleet' },
  });
  expect((await call(bearer(tokens.viewer), 'GET', '/api/v1/config/base')).json().document).toEqual({
    ntp: 'pool',
  });
  const refused = await call(bearer(tokens.viewer), 'PUT', '/api/v1/config/base', { document: {} });
  expect(refused.statusCode).toBe(403);
  expect(refused.json().error.message).toContain('config.write');

  // The scoped operator neither sees nor changes the admin's document; its own applies within its scope.
  const west = bearer(tokens.west);
  expect((await call(west, 'GET', '/api/v1/config')).json()).toEqual({ documents: [], staged: [] });
  expect((await call(west, 'DELETE', '/api/v1/config/base')).statusCode).toBe(404);
  expect((await call(west, 'PUT', '/api/v1/config/base', { document: {} })).statusCode).toBe(403);
  expect(
    (await call(west, 'PUT', '/api/v1/config/mine', { document: { w: 1 }, device: 'pos-2' })).statusCode,
  ).toBe(404);
  expect(
    (await call(west, 'PUT', '/api/v1/config/mine', { document: { w: 1 } })).json().document,
  ).toMatchObject({
    scope: 'tag.region=west',
  });
  expect((await call(west, 'GET', '/api/v1/devices/pos-2/config')).statusCode).toBe(404);
  expect((await heartbeat('pos-2')).json().config.version).toBe('base@1');
  expect((await heartbeat('pos-1')).json().config.version).toBe('base@1+mine@1');
  expect((await call(west, 'DELETE', '/api/v1/config/mine')).json()).toMatchObject({
    name: 'mine',
    version: 1,
  });
});

it('hands a device its document until it reports on it, and its report clears drift', async () => {
  await call(t.admin, 'PUT', '/api/v1/config/west', {
    document: { log: 'debug' },
    filter: 'tag.region = west',
  });
  expect((await heartbeat('pos-2')).json()).not.toHaveProperty('config');
  const offered = (await heartbeat('pos-1')).json().config;
  expect(offered).toMatchObject({ version: 'west@1', document: { log: 'debug' } });
  const drifting = await call(
    t.admin,
    'GET',
    `/api/v1/devices?filter=${encodeURIComponent('config.drift = true')}`,
  );
  expect(drifting.json().devices.map((d: { id: string }) => d.id)).toEqual(['pos-1']);

  const report = (payload: unknown, device: keyof typeof CREDENTIALS = 'pos-1') =>
    call(bearer(CREDENTIALS[device]), 'POST', '/api/device/v1/config/status', payload);
  expect((await report({ version: 'west@1', hash: 'nothex', result: 'applied' })).statusCode).toBe(400);
  expect((await report({ version: 'west@1', hash: offered.hash, result: 'maybe' })).statusCode).toBe(400);
  expect(
    (
      await call({}, 'POST', '/api/device/v1/config/status', {
        version: 'v',
        hash: offered.hash,
        result: 'applied',
      })
    ).statusCode,
  ).toBe(401);
  const done = await report({
    version: offered.version,
    hash: offered.hash,
    result: 'applied',
    output: 'reloaded\n',
  });
  expect(done.json()).toMatchObject({ drift: false, applied: { version: 'west@1', hash: offered.hash } });
  expect((await heartbeat('pos-1')).json().config).toEqual({ version: 'west@1', hash: offered.hash });

  const shown = await call(t.admin, 'GET', '/api/v1/devices/pos-1/config');
  expect(shown.json()).toMatchObject({
    device_id: 'pos-1',
    desired: { version: 'west@1', hash: offered.hash },
    last_report: { result: 'applied', output: 'reloaded\n' },
    drift: false,
  });
  const none = await call(
    t.admin,
    'GET',
    `/api/v1/devices?filter=${encodeURIComponent('config.drift = true')}`,
  );
  expect(none.json().devices).toEqual([]);
  expect((await call(t.admin, 'GET', '/api/v1/config/nope')).statusCode).toBe(404);
});

it('shows each device its configuration state in the device JSON, in a read and a listing', async () => {
  const configOf = async (url: string) => (await call(t.admin, 'GET', url)).json();
  expect((await configOf('/api/v1/devices/pos-1')).config).toBeNull();
  await call(t.admin, 'PUT', '/api/v1/config/west', {
    document: { log: 'debug' },
    filter: 'tag.region = west',
  });
  const drifting = { desired_version: 'west@1', applied_version: null, drift: true };
  expect((await configOf('/api/v1/devices/pos-1')).config).toEqual(drifting);
  expect((await configOf('/api/v1/devices/pos-2')).config).toBeNull();

  const offered = (await heartbeat('pos-1')).json().config;
  await call(bearer(CREDENTIALS['pos-1']), 'POST', '/api/device/v1/config/status', {
    version: offered.version,
    hash: offered.hash,
    result: 'applied',
  });
  await call(t.admin, 'PUT', '/api/v1/config/west', {
    document: { log: 'info' },
    filter: 'tag.region = west',
  });
  const listed = (await configOf('/api/v1/devices?sort=id')).devices;
  expect(listed.map((d: { id: string; config: unknown }) => [d.id, d.config])).toEqual([
    ['pos-1', { desired_version: 'west@2', applied_version: 'west@1', drift: true }],
    ['pos-2', null],
  ]);
  // Without config.read, the device JSON leaves the configuration out.
  await call(t.admin, 'POST', '/api/v1/roles', { name: 'devices-only', permissions: ['devices.read'] });
  const blind = (
    await call(t.admin, 'POST', '/api/v1/tokens', { name: 'blind', role: 'devices-only' })
  ).json().token;
  const unseen = (await call(bearer(blind), 'GET', '/api/v1/devices/pos-1')).json();
  expect(unseen.id).toBe('pos-1');
  expect(unseen).not.toHaveProperty('config');
  // A removed document leaves the device's row behind with nothing desired: no document applies.
  await call(t.admin, 'DELETE', '/api/v1/config/west');
  expect((await configOf('/api/v1/devices/pos-1')).config).toBeNull();
});
