/**
 * Staged configuration versions through the API, on the real server and SQLite store: a staged PUT changes no
 * device's heartbeat answer, a release hands the version to a canary first and then the rest, reports show in its
 * progress, promotion makes it every device's, and bad input (an unknown document, a stale version, a filter and
 * a device at once, another scope's document) is a 4xx before anything is written.
 */
import { beforeEach, expect, it } from 'vitest';
import { deviceCredential, hashSecret, splitDeviceCredential } from '../src/registry/credentials.js';
import { type TestApp, testApp } from './support/app.js';

let t: TestApp;
const IDS = ['pos-1', 'pos-2', 'pos-3'] as const;
type Id = (typeof IDS)[number];
const CREDENTIALS = Object.fromEntries(IDS.map((id) => [id, deviceCredential(id)])) as Record<Id, string>;
let viewer = '';
let east = '';

beforeEach(async () => {
  t = await testApp();
  const ctx = {
    now: t.clock.now(),
    thresholds: { offlineAfterMs: 600_000, abandonedAfterMs: 30 * 86_400_000 },
  };
  await t.store.importDevices(
    IDS.map((id) => ({ id, tags: { region: id === 'pos-3' ? 'east' : 'west' } })),
    ctx,
    'test',
  );
  for (const [id, credential] of Object.entries(CREDENTIALS)) {
    await t.store.setCredential(id, hashSecret(splitDeviceCredential(credential)!.secret), ctx, 'test');
  }
  const make = async (name: string, role: string, scope?: string) =>
    (await call(t.admin, 'POST', '/api/v1/tokens', { name, role, ...(scope ? { scope } : {}) })).json()
      .token as string;
  viewer = await make('support', 'viewer');
  east = await make('east-ops', 'operator', 'tag.region=east');
  return () => t.close();
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const call = (
  headers: Record<string, string>,
  method: 'GET' | 'PUT' | 'POST' | 'DELETE',
  url: string,
  payload?: unknown,
) => t.app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload: payload as object }) });
const heartbeat = async (device: Id) =>
  (await call(bearer(CREDENTIALS[device]), 'POST', '/api/device/v1/heartbeat', { device_id: device })).json()
    .config as { version: string; hash: string; document?: object } | undefined;
const report = (device: Id, offered: { version: string; hash: string }, result: 'applied' | 'failed') =>
  call(bearer(CREDENTIALS[device]), 'POST', '/api/device/v1/config/status', {
    version: offered.version,
    hash: offered.hash,
    result,
  });
const versions = async () => {
  const out: Array<string | null> = [];
  for (const id of IDS) out.push((await heartbeat(id))?.version ?? null);
  return out;
};

it('stages a version, releases it to a canary then the rest, and promotes it', async () => {
  await call(t.admin, 'PUT', '/api/v1/config/base', { document: { log: 'info' } });
  const staged = await call(t.admin, 'PUT', '/api/v1/config/base', {
    document: { log: 'debug' },
    filter: 'tag.region = west',
    staged: true,
  });
  expect(staged.statusCode).toBe(200);
  expect(staged.json()).toMatchObject({
    changed: true,
    staged: true,
    document: { version: 2, target: 'filter' },
  });
  // Staging changes nobody: every device keeps version 1.
  expect(await versions()).toEqual(['base@1', 'base@1', 'base@1']);
  const listed = (await call(bearer(viewer), 'GET', '/api/v1/config')).json();
  expect(listed.documents.map((d: { version: number }) => d.version)).toEqual([1]);
  expect(listed.staged).toMatchObject([{ name: 'base', version: 2, current_version: 1 }]);

  const canary = await call(t.admin, 'POST', '/api/v1/config/base/release', { version: 2, count: 1 });
  expect(canary.statusCode).toBe(200);
  expect(canary.json()).toMatchObject({
    released: 1,
    staged: { progress: { released: 1, applied: 0, failed: 0, pending: 1 } },
  });
  const offered = (await heartbeat('pos-1'))!;
  expect(offered).toMatchObject({ version: 'base@2', document: { log: 'debug' } });
  expect(await versions()).toEqual(['base@2', 'base@1', 'base@1']);
  expect((await report('pos-1', offered, 'applied')).statusCode).toBe(200);
  const progress = (await call(bearer(viewer), 'GET', '/api/v1/config/base/staged')).json();
  expect(progress).toMatchObject({ document: { log: 'debug' }, progress: { applied: 1, pending: 0 } });

  // The rest of the devices it applies to: pos-3 (east) is not one of them.
  const rest = await call(t.admin, 'POST', '/api/v1/config/base/release', { version: 2 });
  expect(rest.json().released).toBe(1);
  expect(await versions()).toEqual(['base@2', 'base@2', 'base@1']);

  const promoted = await call(t.admin, 'POST', '/api/v1/config/base/promote', { version: 2 });
  expect(promoted.statusCode).toBe(200);
  expect(promoted.json()).toMatchObject({ name: 'base', version: 2, filter: 'tag.region = west' });
  expect((await call(t.admin, 'GET', '/api/v1/config/base/staged')).statusCode).toBe(404);
  // Promoted with its filter: east no longer holds the document.
  expect(await versions()).toEqual(['base@2', 'base@2', null]);
  const audited = await t.store.audit.list({ limit: 50 });
  expect(audited.map((e) => e.action)).toEqual(
    expect.arrayContaining(['POST /api/v1/config/:name/release', 'POST /api/v1/config/:name/promote']),
  );
});

it('drops a staged version: the devices it reached go back to the current one', async () => {
  await call(t.admin, 'PUT', '/api/v1/config/base', { document: { a: 1 } });
  await call(t.admin, 'PUT', '/api/v1/config/base', { document: { a: 2 }, staged: true });
  await call(t.admin, 'POST', '/api/v1/config/base/release', { version: 2, device: 'pos-2' });
  expect(await versions()).toEqual(['base@1', 'base@2', 'base@1']);
  const dropped = await call(t.admin, 'DELETE', '/api/v1/config/base/staged');
  expect(dropped.json()).toMatchObject({ version: 2, progress: { released: 1 } });
  expect(await versions()).toEqual(['base@1', 'base@1', 'base@1']);
  const types = (await t.store.listEvents({ after: 0, limit: 100 })).map((e) => e.type);
  expect(types.filter((x) => x.startsWith('config.'))).toEqual([
    'config.set',
    'config.staged',
    'config.released',
    'config.unstaged',
  ]);
});

it('refuses bad input with a 4xx before writing anything', async () => {
  await call(t.admin, 'PUT', '/api/v1/config/base', { document: { a: 1 } });
  const release = (name: string, payload: unknown, headers = t.admin) =>
    call(headers, 'POST', `/api/v1/config/${name}/release`, payload);
  expect((await release('base', { version: 2 })).statusCode).toBe(404); // nothing staged
  expect((await release('nope', { version: 1 })).statusCode).toBe(404);
  await call(t.admin, 'PUT', '/api/v1/config/base', { document: { a: 2 }, staged: true });
  const cases: Array<[unknown, number]> = [
    [{ version: 3 }, 409],
    [{}, 400],
    [{ version: 0 }, 400],
    [{ version: 2, filter: 'tag.region = (' }, 400],
    [{ version: 2, filter: 'tag.region = west', device: 'pos-1' }, 400],
    [{ version: 2, count: 0 }, 400],
    [{ version: 2, device: 'nobody' }, 404],
  ];
  for (const [payload, status] of cases) {
    const r = await release('base', payload);
    expect(r.statusCode, JSON.stringify(payload)).toBe(status);
    expect(Object.keys(r.json().error)).toEqual(expect.arrayContaining(['code', 'message']));
  }
  expect((await call(t.admin, 'POST', '/api/v1/config/base/promote', { version: 1 })).statusCode).toBe(409);
  // Viewers read only; a scoped operator sees nothing staged outside its scope.
  expect((await release('base', { version: 2 }, bearer(viewer))).statusCode).toBe(403);
  expect((await release('base', { version: 2 }, bearer(east))).statusCode).toBe(404);
  expect((await call(bearer(east), 'DELETE', '/api/v1/config/base/staged')).statusCode).toBe(404);
  expect((await call(t.admin, 'GET', '/api/v1/config/base/staged')).json().progress.released).toBe(0);
  expect(await versions()).toEqual(['base@1', 'base@1', 'base@1']);
});
