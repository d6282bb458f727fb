/**
 * Connectivity classes through the HTTP API on SQLite and PostgreSQL, in the injected clock's time: a device of an
 * hourly class is still online 30 min after its heartbeat while a default device is offline — in its JSON, the
 * filter's `status`, the fleet statistics and the status sweep alike; the heartbeat answer carries the class's
 * interval; the more specific class wins; bad classes are refused before anything is written.
 */
import { describe, expect, it } from 'vitest';
import { type TestApp, testApp } from './support/app.js';
import { forEachBackend } from './support/stores.js';

const START = Date.parse('2026-12-01T08:00:00Z');
const MIN = 60_000;

const HOURLY = {
  match: { hardware: 'sensor-v2' },
  heartbeat_interval: '1h',
  offline_after: '3h',
  abandoned_after: '30d',
};
const MAINS = {
  match: { tag: { key: 'power', value: 'mains' } },
  heartbeat_interval: '30s',
  offline_after: '2m',
  abandoned_after: '1d',
};

forEachBackend((backend) => {
  async function world() {
    const t: TestApp = await testApp(START, { store: await backend.open() });
    // biome-ignore lint/suspicious/noExplicitAny: each test reads the fields of the reply it expects.
    const call = async (method: string, url: string, payload?: unknown, token?: string): Promise<any> => {
      const r = await t.app.inject({
        method: method as 'GET',
        url,
        headers: { authorization: `Bearer ${token ?? t.adminToken}` },
        ...(payload === undefined ? {} : { payload: payload as object }),
      });
      return { status: r.statusCode, body: r.body ? r.json() : {} };
    };
    const imported = await call('POST', '/api/v1/devices/import', {
      devices: [
        { id: 'sensor-1', hardware_type: 'sensor-v2' },
        { id: 'sensor-2', hardware_type: 'sensor-v2', tags: { power: 'mains' } },
        { id: 'pos-1', hardware_type: 'pos-x100' },
      ],
    });
    expect(imported.status).toBe(200);
    const credentials = new Map<string, string>();
    for (const id of ['sensor-1', 'sensor-2', 'pos-1']) {
      credentials.set(id, (await call('POST', `/api/v1/devices/${id}/credential`)).body.credential);
    }
    const heartbeat = (id: string) =>
      call('POST', '/api/device/v1/heartbeat', { device_id: id }, credentials.get(id));
    const statusOf = async (id: string) => (await call('GET', `/api/v1/devices/${id}`)).body.status;
    const listed = async (filter: string) =>
      (await call('GET', `/api/v1/devices?filter=${encodeURIComponent(filter)}`)).body.devices
        .map((d: { id: string }) => d.id)
        .sort();
    const token = async (role: string) =>
      (await call('POST', '/api/v1/tokens', { name: `${role}-token`, role })).body.token as string;
    return { t, call, heartbeat, statusOf, listed, token };
  }

  describe('connectivity classes', () => {
    it('an hourly sensor is online 30 min after its heartbeat while a default device is offline, everywhere', async () => {
      const { t, call, heartbeat, statusOf, listed } = await world();
      try {
        expect((await call('PUT', '/api/v1/connectivity-classes/hourly-sensors', HOURLY)).status).toBe(201);
        const mains = await call('PUT', '/api/v1/connectivity-classes/mains-sensors', MAINS);
        expect(mains.status).toBe(201);

        // The tag class is more specific than the hardware class: sensor-2 is in mains-sensors.
        const classes = await call('GET', '/api/v1/connectivity-classes');
        expect(
          classes.body.classes.map((c: { name: string; device_count: number }) => [c.name, c.device_count]),
        ).toEqual([
          ['mains-sensors', 1],
          ['hourly-sensors', 1],
        ]);
        expect(classes.body.classes[1]).toMatchObject({
          match: { hardware: 'sensor-v2' },
          heartbeat_interval: '1h',
          offline_after: '3h',
          abandoned_after: '30d',
          heartbeat_interval_sec: 3600,
          priority: 0,
        });

        // The heartbeat answer asks each device for its class's interval.
        const answers = await Promise.all(['sensor-1', 'sensor-2', 'pos-1'].map(heartbeat));
        expect(answers.map((a) => [a.status, a.body.next_heartbeat])).toEqual([
          [200, 3600],
          [200, 30],
          [200, 300],
        ]);
        await t.sweeper.sweep();

        t.clock.advance(30 * MIN);
        expect(await statusOf('sensor-1')).toBe('online');
        expect(await statusOf('sensor-2')).toBe('offline');
        expect(await statusOf('pos-1')).toBe('offline');
        const device = await call('GET', '/api/v1/devices/sensor-1');
        expect(device.body.connectivity_class).toEqual({
          name: 'hourly-sensors',
          heartbeat_interval_sec: 3600,
          offline_after_sec: 10_800,
          abandoned_after_sec: 2_592_000,
        });
        expect((await call('GET', '/api/v1/devices/pos-1')).body.connectivity_class).toBeUndefined();

        expect(await listed('status = online')).toEqual(['sensor-1']);
        expect(await listed('status = offline')).toEqual(['pos-1', 'sensor-2']);
        expect(await listed('not status = online')).toEqual(['pos-1', 'sensor-2']);
        const stats = await call('GET', '/api/v1/fleet/stats');
        expect(stats.body.by_status).toMatchObject({ online: 1, offline: 2, abandoned: 0 });

        // The sweep records the silence by each device's own thresholds, with its events.
        const moved = await t.sweeper.sweep();
        expect(moved.map((m) => `${m.deviceId}:${m.to}`).sort()).toEqual([
          'pos-1:offline',
          'sensor-2:offline',
        ]);

        t.clock.advance(2.5 * 60 * MIN + 1_000);
        expect(await statusOf('sensor-1')).toBe('offline');
        expect((await t.sweeper.sweep()).map((m) => `${m.deviceId}:${m.to}`)).toEqual(['sensor-1:offline']);
        // sensor-2's class abandons after a day.
        t.clock.advance(21 * 60 * MIN);
        expect(await listed('status = abandoned')).toEqual(['sensor-2']);
        expect((await call('GET', '/api/v1/fleet/stats')).body.by_status).toMatchObject({
          online: 0,
          offline: 2,
          abandoned: 1,
        });
        expect((await t.sweeper.sweep()).map((m) => `${m.deviceId}:${m.to}`)).toEqual(['sensor-2:abandoned']);
      } finally {
        await t.close();
      }
    });

    it('a removed class gives its devices back the server-wide thresholds, and the sweep catches up', async () => {
      const { t, call, heartbeat, statusOf } = await world();
      try {
        await call('PUT', '/api/v1/connectivity-classes/hourly-sensors', HOURLY);
        await heartbeat('sensor-1');
        await t.sweeper.sweep();
        t.clock.advance(30 * MIN);
        expect(await t.sweeper.sweep()).toEqual([]);
        expect(await statusOf('sensor-1')).toBe('online');

        const removed = await call('DELETE', '/api/v1/connectivity-classes/hourly-sensors');
        expect(removed).toMatchObject({ status: 200, body: { deleted: 'hourly-sensors' } });
        expect(await statusOf('sensor-1')).toBe('offline');
        // Silent for 30 min by then: the sweep after the change looks at every device, not only the newly silent.
        t.clock.advance(30_000);
        expect((await t.sweeper.sweep()).map((m) => `${m.deviceId}:${m.to}`)).toEqual(['sensor-1:offline']);
        expect((await heartbeat('sensor-1')).body.next_heartbeat).toBe(300);
        expect((await call('DELETE', '/api/v1/connectivity-classes/hourly-sensors')).status).toBe(404);
      } finally {
        await t.close();
      }
    });

    it('a device imported after its class joins it at the next sweep; priority beats specificity', async () => {
      const { t, call, statusOf } = await world();
      try {
        await call('PUT', '/api/v1/connectivity-classes/mains-sensors', MAINS);
        const hourly = await call('PUT', '/api/v1/connectivity-classes/hourly-sensors', {
          ...HOURLY,
          priority: 10,
        });
        expect(hourly.status).toBe(201);
        expect(hourly.body.device_count).toBe(2);
        await call('POST', '/api/v1/devices/import', {
          devices: [
            {
              id: 'sensor-3',
              hardware_type: 'sensor-v2',
              last_seen: new Date(START - 20 * MIN).toISOString(),
            },
          ],
        });
        expect(await statusOf('sensor-3')).toBe('offline');
        await t.sweeper.sweep();
        expect(await statusOf('sensor-3')).toBe('online');
        expect((await call('GET', '/api/v1/connectivity-classes/hourly-sensors')).body.device_count).toBe(3);
        // Replacing a class's figures moves its devices at once (200: it existed).
        const tighter = await call('PUT', '/api/v1/connectivity-classes/hourly-sensors', {
          ...HOURLY,
          priority: 10,
          heartbeat_interval: '5m',
          offline_after: '15m',
        });
        expect(tighter.status).toBe(200);
        expect(await statusOf('sensor-3')).toBe('offline');
      } finally {
        await t.close();
      }
    });

    it('refuses bad classes with a 400 naming the field, and keeps writing to admins', async () => {
      const { t, call, token } = await world();
      try {
        const put = (body: unknown, who?: string) =>
          call('PUT', '/api/v1/connectivity-classes/c1', body, who);
        const refused = async (body: unknown, message: RegExp) => {
          const r = await put(body);
          expect(r.status).toBe(400);
          expect(r.body.error.message).toMatch(message);
        };
        await refused(
          { ...HOURLY, offline_after: '30m' },
          /offline_after must be longer than heartbeat_interval/,
        );
        await refused(
          { ...HOURLY, abandoned_after: '2h' },
          /abandoned_after must be longer than offline_after/,
        );
        await refused({ ...HOURLY, heartbeat_interval: 'hourly' }, /heartbeat_interval/);
        await refused({ ...HOURLY, heartbeat_interval: '1s' }, /heartbeat_interval must be between 10s/);
        await refused({ ...HOURLY, match: { group: 'nope' } }, /group nope does not exist/);
        await refused({ ...HOURLY, match: { hardware: 'a', group: 'b' } }, /match/);
        await refused({ ...HOURLY, match: {} }, /match/);
        await refused({ ...HOURLY, extra: 1 }, /.+/);
        const badName = await call('PUT', '/api/v1/connectivity-classes/Bad%20Name', HOURLY);
        expect(badName.status).toBe(400);
        expect((await call('GET', '/api/v1/connectivity-classes')).body.classes).toEqual([]);

        const viewer = await token('viewer');
        const operator = await token('operator');
        expect((await call('GET', '/api/v1/connectivity-classes', undefined, viewer)).status).toBe(200);
        expect((await put(HOURLY, operator)).status).toBe(403);
        expect((await put(HOURLY, viewer)).status).toBe(403);
        expect((await call('GET', '/api/v1/connectivity-classes/c1')).status).toBe(404);
        expect((await put(HOURLY)).status).toBe(201);
      } finally {
        await t.close();
      }
    });
  });
});
