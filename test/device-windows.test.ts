/**
 * Windows that belong to devices and deferrals within a budget: a rollout with `window: device_defined` offers
 * each device its update only inside the device's own windows (the fallback window for the others); a device
 * defers an offered soft update until its budget is spent (409), after which the update is offered forced. The
 * real API, store and engine on a manual clock, on SQLite and (briefly) PostgreSQL.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PendingUpdateJson } from '../src/protocol/device-api.js';
import { injectTransport, ProtocolDevice } from '../src/sim/protocol-device.js';
import { VirtualFleet } from '../src/sim/virtual-fleet.js';
import { create, HOUR, MINUTE, syntheticFleet } from './support/rollouts.js';
import { forEachDatabase } from './support/stores.js';

const START = Date.parse('2026-01-05T12:00:00Z'); // a Monday

let fleet: VirtualFleet | undefined;
afterEach(async () => {
  await fleet?.close();
  fleet = undefined;
});

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

/** A fleet of `count` UTC devices whose credentials the test holds (to call the device API itself). */
async function fleetOf(db: string | undefined, count: number) {
  const f = await VirtualFleet.create({ start: START, db });
  fleet = f;
  await f.importFleet(syntheticFleet(count));
  await f.release('fw', '2.0.0', ['hw-a']);
  const credentials = new Map<string, string>();
  for (const id of f.devices.keys()) {
    const { credential } = await f.api<{ credential: string }>('POST', `/api/v1/devices/${id}/credential`);
    credentials.set(id, credential);
    f.devices.set(
      id,
      new ProtocolDevice(id, credential, injectTransport(f.parts.app), '1.0.0', {
        outcome: () => ({ kind: 'succeed' }),
      }),
    );
  }
  const call = async (
    method: 'GET' | 'PUT' | 'POST' | 'DELETE',
    url: string,
    body?: unknown,
    token?: string,
  ) => {
    const r = await f.parts.app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${token ?? f.adminToken}` },
      ...(body === undefined ? {} : { payload: body as Record<string, unknown> }),
    });
    return { status: r.statusCode, body: r.json() } as Answer;
  };
  const asDevice = (id: string, method: 'PUT' | 'POST', url: string, body?: unknown) =>
    call(method, `/api/device/v1${url}`, body ?? {}, credentials.get(id));
  const offer = async (id: string): Promise<PendingUpdateJson> => {
    const [u] = await f.device(id).heartbeat();
    expect(u).toBeDefined();
    return u!;
  };
  return { f, call, asDevice, offer };
}

const window = (start: string, end: string) => ({ start, end });

forEachDatabase((database) => {
  // The whole file on SQLite; on PostgreSQL the two paths its store code differs in (upserts, the row lock).
  const everywhere = it;
  const sqliteOnly = database.name === 'sqlite' ? it : it.skip;
  let db: string | undefined;
  beforeEach(async () => {
    db = await database.fresh();
  });

  describe('device windows', () => {
    it('a device is offered its update only in its own window; one without windows uses the fallback', async () => {
      const { f, call, asDevice, offer } = await fleetOf(db, 3);
      // dev-0000: 14:00–15:00 set by the operator; dev-0002 reports 11:00–13:00 itself; dev-0001 has none.
      const set = await call('PUT', '/api/v1/devices/dev-0000/windows', {
        windows: [window('14:00', '15:00')],
      });
      expect(set.status).toBe(200);
      expect(
        (await asDevice('dev-0002', 'PUT', '/windows', { windows: [window('11:00', '13:00')] })).status,
      ).toBe(200);
      const listed = await call('GET', '/api/v1/windows');
      expect(
        (listed.body.windows as Array<{ device_id: string; source: string }>).map((w) => [
          w.device_id,
          w.source,
        ]),
      ).toEqual([
        ['dev-0000', 'operator'],
        ['dev-0002', 'device'],
      ]);
      const rollout = await create(f, {
        name: 'own windows',
        release: 'fw@2.0.0',
        filter: '',
        strategy: 'on_connect',
        window: 'device_defined',
        fallback_window: window('02:00', '04:00'),
      });
      expect(rollout.spec.window).toBe('device_defined');
      await f.tick();

      // 12:00: only dev-0002's window is open.
      expect((await f.connect(['dev-0000', 'dev-0001', 'dev-0002'])).map((r) => r.deviceId)).toEqual([
        'dev-0002',
      ]);
      expect((await offer('dev-0000')).retry_after).toBe(3600); // hints are capped at an hour
      f.advance(2 * HOUR + 5 * MINUTE); // 14:05
      await f.tick();
      expect((await f.connect(['dev-0000', 'dev-0001'])).map((r) => r.deviceId)).toEqual(['dev-0000']);
      f.advance(12 * HOUR); // 02:05 the next day: the fallback window
      await f.tick();
      expect((await f.connect(['dev-0001'])).map((r) => r.state)).toEqual(['succeeded']);

      const shown = await call('GET', '/api/v1/devices/dev-0000/windows');
      expect(shown.body.windows).toMatchObject({
        windows: [{ start: '14:00', end: '15:00', timezone: 'device' }],
        source: 'operator',
      });
      expect((await call('DELETE', '/api/v1/devices/dev-0000/windows')).status).toBe(200);
      expect((await call('DELETE', '/api/v1/devices/dev-0000/windows')).body.error).toMatchObject({
        code: 'NOT_FOUND',
      });
    });

    sqliteOnly(
      'refuses bad windows and specs with field-named 4xx errors before writing anything',
      async () => {
        const { f, call } = await fleetOf(db, 1);
        const bad = await call('PUT', '/api/v1/devices/dev-0000/windows', {
          windows: [window('25:00', '03:00')],
        });
        expect(bad.status).toBe(400);
        expect(bad.body.error).toMatchObject({
          code: 'VALIDATION',
          message: expect.stringMatching(/^windows\[0\]\.start: /),
        });
        const same = await call('PUT', '/api/v1/devices/dev-0000/windows', {
          windows: [window('02:00', '02:00')],
        });
        expect((same.body.error as { message: string }).message).toMatch(/^windows\[0\]\.end: must differ/);
        expect(
          (await call('PUT', '/api/v1/devices/nobody/windows', { windows: [window('01:00', '02:00')] }))
            .status,
        ).toBe(404);
        expect((await call('GET', '/api/v1/devices/dev-0000/windows')).body.windows).toBeNull();

        const spec = { name: 'x', release: 'fw@2.0.0', filter: '', strategy: 'on_connect' };
        const refused = async (extra: Record<string, unknown>) => {
          const r = await call('POST', '/api/v1/rollouts', { ...spec, ...extra });
          expect(r.status).toBe(400);
          return (r.body.error as { message: string }).message;
        };
        expect(await refused({ window: 'sometimes' })).toBe(
          'window: must be a window (start, end, …) or "device_defined"',
        );
        expect(await refused({ fallback_window: window('02:00', '04:00') })).toMatch(
          /^fallback_window: is only used with window: device_defined/,
        );
        expect(await refused({ window: 'device_defined', fallback_window: { start: '02:00' } })).toBe(
          'fallback_window.end: is required',
        );
        expect(await refused({ deferral: { max_count: 2 } })).toMatch(
          /^deferral: only a soft update can be deferred/,
        );
        expect(await refused({ action: 'soft', deferral: {} })).toMatch(
          /^deferral: needs max_count, max_total or both/,
        );
        expect(await refused({ action: 'soft', deferral: { max_total: 'soon' } })).toMatch(
          /^deferral\.max_total: /,
        );
        expect(await refused({ strategy: 'scheduled', window: 'device_defined' })).toMatch(
          /^fallback_window: is required/,
        );
        expect((await f.api<{ rollouts: unknown[] }>('GET', '/api/v1/rollouts')).rollouts).toEqual([]);
      },
    );

    sqliteOnly(
      'a viewer reads but does not set windows; a scoped operator reaches only its devices',
      async () => {
        const { call } = await fleetOf(db, 2);
        const token = async (role: string, scope?: string) =>
          (await call('POST', '/api/v1/tokens', { name: `t-${role}`, role, ...(scope ? { scope } : {}) }))
            .body.token as string;
        const viewer = await token('viewer');
        const scoped = await token('operator', 'id = dev-0001');
        const body = { windows: [window('01:00', '02:00')] };
        expect((await call('PUT', '/api/v1/devices/dev-0000/windows', body, viewer)).status).toBe(403);
        expect((await call('GET', '/api/v1/devices/dev-0000/windows', undefined, viewer)).status).toBe(200);
        expect((await call('PUT', '/api/v1/devices/dev-0000/windows', body, scoped)).status).toBe(404);
        expect((await call('PUT', '/api/v1/devices/dev-0001/windows', body, scoped)).status).toBe(200);
        await call('PUT', '/api/v1/devices/dev-0000/windows', body);
        const listed = await call('GET', '/api/v1/windows', undefined, scoped);
        expect((listed.body.windows as Array<{ device_id: string }>).map((w) => w.device_id)).toEqual([
          'dev-0001',
        ]);
        expect((await call('GET', '/api/v1/devices/dev-0000/windows', undefined, scoped)).status).toBe(404);
      },
    );
  });

  describe('deferrals', () => {
    everywhere(
      'a device defers up to max_count times (409 after), then is offered the update forced',
      async () => {
        const { f, call, asDevice, offer } = await fleetOf(db, 1);
        await create(f, {
          name: 'soft',
          release: 'fw@2.0.0',
          filter: '',
          strategy: 'on_connect',
          action: 'soft',
          deferral: { max_count: 2, max_total: '6h' },
        });
        await f.tick();
        const first = await offer('dev-0000');
        expect(first).toMatchObject({ state: 'notified', retry_after: null, soft: true });

        const d1 = await asDevice('dev-0000', 'POST', `/updates/${first.id}/defer`, { for: '1h' });
        expect(d1.status).toBe(200);
        expect(d1.body).toMatchObject({ count: 1, deferred_until: new Date(START + HOUR).toISOString() });
        // The slot went back: the update waits, held until the deferral ends.
        expect(await offer('dev-0000')).toMatchObject({ state: 'pending', retry_after: 3600, soft: true });
        f.advance(59 * MINUTE);
        expect((await offer('dev-0000')).retry_after).toBe(60);
        f.advance(MINUTE);
        const again = await offer('dev-0000');
        expect(again).toMatchObject({ state: 'notified', retry_after: null, soft: true });

        // A second deferral asking for 10h is cut to the 6h after the first one.
        const d2 = await asDevice('dev-0000', 'POST', `/updates/${again.id}/defer`, { for: '10h' });
        expect(d2.body).toMatchObject({ count: 2, deferred_until: new Date(START + 6 * HOUR).toISOString() });
        const spent = await asDevice('dev-0000', 'POST', `/updates/${again.id}/defer`);
        expect(spent.status).toBe(409);
        expect(spent.body.error).toMatchObject({
          code: 'CONFLICT',
          message: expect.stringMatching(/budget spent/),
        });

        const shown = await call('GET', '/api/v1/devices/dev-0000/windows');
        expect(shown.body.deferrals).toEqual([
          {
            update_id: again.id,
            rollout_id: again.rollout_id,
            count: 2,
            first_at: new Date(START).toISOString(),
            deferred_until: new Date(START + 6 * HOUR).toISOString(),
          },
        ]);
        f.advance(5 * HOUR - 1000);
        expect((await offer('dev-0000')).retry_after).toBe(1);
        f.advance(1000);
        expect(await offer('dev-0000')).toMatchObject({ state: 'notified', retry_after: null, soft: false });
      },
    );

    sqliteOnly(
      'max_total forces the update however few deferrals were made; forced and installing updates are refused',
      async () => {
        const { f, asDevice, offer } = await fleetOf(db, 2);
        await create(f, {
          name: 'soft',
          release: 'fw@2.0.0',
          filter: 'id = dev-0000',
          strategy: 'on_connect',
          action: 'soft',
          deferral: { max_total: '2h' },
        });
        await f.tick();
        const u = await offer('dev-0000');
        expect(
          (await asDevice('dev-0000', 'POST', `/updates/${u.id}/defer`, { for: '90m' })).body,
        ).toMatchObject({
          count: 1,
        });
        f.advance(90 * MINUTE);
        // Asked from downloading: the slot goes back as well.
        const granted = await offer('dev-0000');
        expect(granted.state).toBe('notified');
        const seq = granted.last_seq + 1;
        await asDevice('dev-0000', 'POST', `/updates/${u.id}/status`, {
          seq,
          state: 'downloading',
          progress: 10,
        });
        const d2 = await asDevice('dev-0000', 'POST', `/updates/${u.id}/defer`, { for: '5h' });
        expect(d2.body).toMatchObject({ count: 2, deferred_until: new Date(START + 2 * HOUR).toISOString() });
        f.advance(30 * MINUTE);
        expect(await offer('dev-0000')).toMatchObject({ state: 'notified', retry_after: null, soft: false });
        expect((await asDevice('dev-0000', 'POST', `/updates/${u.id}/defer`)).status).toBe(409);
        // The device now installs it: no deferral once installing.
        expect((await f.connect(['dev-0000'])).map((r) => r.state)).toEqual(['succeeded']);
        expect((await asDevice('dev-0000', 'POST', `/updates/${u.id}/defer`)).status).toBe(409);

        // A forced rollout has no budget; another device's update is not found.
        await create(f, {
          name: 'forced',
          release: 'fw@2.0.0',
          filter: 'id = dev-0001',
          strategy: 'on_connect',
        });
        await f.tick();
        const forced = await offer('dev-0001');
        const refused = await asDevice('dev-0001', 'POST', `/updates/${forced.id}/defer`);
        expect(refused.status).toBe(409);
        expect((refused.body.error as { message: string }).message).toMatch(/no deferral budget/);
        expect((await asDevice('dev-0000', 'POST', `/updates/${forced.id}/defer`)).status).toBe(404);
        expect(
          (await asDevice('dev-0001', 'POST', `/updates/${forced.id}/defer`, { for: 'later' })).status,
        ).toBe(400);
      },
    );
  });
});
