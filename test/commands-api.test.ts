/**
 * The remote command API in process: a command no device could run is refused with a 4xx before anything is
 * written; a device reads its commands only in its own heartbeat answer and posts results only for its own.
 */
import { beforeEach, expect, it } from 'vitest';
import { deviceCredential, hashSecret, splitDeviceCredential } from '../src/registry/credentials.js';
import { type TestApp, testApp } from './support/app.js';

let t: TestApp;
const CREDENTIALS = { 'pos-1': deviceCredential('pos-1'), 'pos-2': deviceCredential('pos-2') };

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

const send = (payload: unknown) =>
  t.app.inject({ method: 'POST', url: '/api/v1/commands', headers: t.admin, payload: payload as object });
const asDevice = (id: keyof typeof CREDENTIALS) => ({ authorization: `Bearer ${CREDENTIALS[id]}` });

it('refuses a command no device could run, before writing anything', async () => {
  const bad = [
    { ids: ['pos-1'], command: { kind: 'restart-app' } },
    { ids: ['pos-1'], command: { kind: 'reboot', app: 'x' } },
    { ids: ['pos-1'], command: { kind: 'run', script: 'echo hi' } },
    { ids: ['pos-1'], command: { kind: 'run', script: 'echo hi', signature: 'not-base64' } },
    { ids: ['pos-1'], command: { kind: 'collect-logs', since: 99 * 86_400 } },
    { ids: ['pos-1'], command: { kind: 'reboot' }, deadline: '8d' },
    { ids: ['pos-1'], command: { kind: 'reboot' }, deadline: 'soon' },
    { filter: 'id = (', command: { kind: 'reboot' } },
    { ids: ['pos-1'], command: { kind: 'format-disk' } },
  ];
  for (const payload of bad) {
    const r = await send(payload);
    expect(r.statusCode, JSON.stringify(payload)).toBe(400);
    expect(Object.keys(r.json().error)).toEqual(expect.arrayContaining(['code', 'message']));
  }
  const events = await t.store.listEvents({ after: 0, limit: 100 });
  expect(events.filter((e) => e.type.startsWith('command.'))).toEqual([]);
});

it('hands a device only its own commands, and takes results only for them', async () => {
  const created = await send({ ids: ['pos-1'], command: { kind: 'restart-app', app: 'till' } });
  expect(created.statusCode).toBe(201);
  const id = created.json().command.id as string;

  const heartbeat = (device: keyof typeof CREDENTIALS) =>
    t.app.inject({
      method: 'POST',
      url: '/api/device/v1/heartbeat',
      headers: asDevice(device),
      payload: { device_id: device },
    });
  expect((await heartbeat('pos-2')).json()).not.toHaveProperty('commands');
  const mine = (await heartbeat('pos-1')).json();
  expect(mine.commands).toEqual([
    { id, kind: 'restart-app', app: 'till', expires_at: new Date(t.clock.now() + 600_000).toISOString() },
  ]);
  // Handed over once.
  expect((await heartbeat('pos-1')).json()).not.toHaveProperty('commands');

  const result = { exit_code: 0, output: 'restarted\n', output_truncated: false, error: null };
  const post = (device: keyof typeof CREDENTIALS) =>
    t.app.inject({
      method: 'POST',
      url: `/api/device/v1/commands/${id}/result`,
      headers: asDevice(device),
      payload: result,
    });
  expect((await post('pos-2')).statusCode).toBe(404);
  expect((await post('pos-1')).json()).toEqual({ accepted: true, state: 'succeeded' });
  const shown = await t.app.inject({ method: 'GET', url: `/api/v1/commands/${id}`, headers: t.admin });
  expect(shown.json()).toMatchObject({
    id,
    kind: 'restart-app',
    app: 'till',
    counts: { succeeded: 1 },
    devices: [{ device_id: 'pos-1', state: 'succeeded', exit_code: 0, output: 'restarted\n' }],
  });
});
