/**
 * A device's connectivity class where its figures matter beyond its own status (docs/connectivity.md), through
 * the HTTP API on every store backend, in the injected clock's time: a rollout's plan (the dry run, and the
 * rollout it creates) reads an hourly sensor 30 min after its heartbeat as online while a default device is
 * offline; SWUpdate's base poll tells a device in a class its class's interval, and a hold shorter than that.
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

forEachBackend((backend) => {
  async function world() {
    const t: TestApp = await testApp(START, { store: await backend.open() });
    // biome-ignore lint/suspicious/noExplicitAny: each test reads the fields of the reply it expects.
    const call = async (method: string, url: string, payload?: unknown, headers = t.admin): Promise<any> => {
      const r = await t.app.inject({
        method: method as 'GET',
        url,
        headers,
        ...(payload === undefined ? {} : { payload: payload as object }),
      });
      return { status: r.statusCode, body: r.body ? r.json() : {} };
    };
    const imported = await call('POST', '/api/v1/devices/import', {
      devices: [
        { id: 'sensor-1', hardware_type: 'sensor-v2', timezone: 'UTC' },
        { id: 'pos-1', hardware_type: 'pos-x100', timezone: 'UTC' },
      ],
    });
    expect(imported.status).toBe(200);
    const credentials = new Map<string, string>();
    for (const id of ['sensor-1', 'pos-1']) {
      credentials.set(id, (await call('POST', `/api/v1/devices/${id}/credential`)).body.credential);
    }
    const uploaded = await t.app.inject({
      method: 'POST',
      url: '/api/v1/artifacts?name=fw&version=2.0.0&type=firmware&hardware=sensor-v2&hardware=pos-x100',
      headers: { ...t.admin, 'content-type': 'application/octet-stream' },
      payload: Buffer.from('fw 2.0.0 image\n'.repeat(64)),
    });
    expect(uploaded.statusCode, uploaded.body).toBe(201);
    const heartbeat = (id: string) =>
      call(
        'POST',
        '/api/device/v1/heartbeat',
        { device_id: id },
        { authorization: `Bearer ${credentials.get(id)}` },
      );
    /** SWUpdate's base poll with the device's TargetToken: the sleep it is told. */
    const pollSleep = async (id: string) => {
      const r = await call('GET', `/DEFAULT/controller/v1/${id}`, undefined, {
        authorization: `TargetToken ${credentials.get(id)}`,
      });
      expect(r.status).toBe(200);
      return r.body.config.polling.sleep as string;
    };
    return { t, call, heartbeat, pollSleep };
  }

  describe("a connectivity class's figures beyond the status", () => {
    it('the plan reads an hourly sensor as online 30 min after its heartbeat, in the dry run and the rollout', async () => {
      const { t, call, heartbeat } = await world();
      try {
        expect((await call('PUT', '/api/v1/connectivity-classes/hourly-sensors', HOURLY)).status).toBe(201);
        for (const id of ['sensor-1', 'pos-1']) expect((await heartbeat(id)).status).toBe(200);
        t.clock.advance(30 * MIN);
        const spec = {
          name: 'to 2.0.0',
          release: 'fw@2.0.0',
          filter: '',
          strategy: 'immediate',
          offline: 'skip',
        };

        const plan = await call('POST', '/api/v1/rollouts?dry_run=true', spec);
        expect(plan.status).toBe(200);
        expect(plan.body).toMatchObject({ targets: 1, online: 1, by_status: { online: 1, offline: 1 } });
        expect(plan.body.skipped).toEqual([
          { device_id: 'pos-1', reason: 'offline at the start (offline: skip)' },
        ]);

        // The rollout is planned by the same read: the sensor is a target, the silent default device is skipped.
        const created = await call('POST', '/api/v1/rollouts', spec);
        expect(created.status).toBe(201);
        const updates = await call('GET', `/api/v1/rollouts/${created.body.id}/updates`);
        expect(
          updates.body.updates
            .map((u: { device_id: string; state: string }) => [u.device_id, u.state])
            .sort(),
        ).toEqual([
          ['pos-1', 'skipped'],
          ['sensor-1', 'pending'],
        ]);

        // Without its class the sensor is judged by the server-wide 10 min, as the default device is.
        expect((await call('DELETE', '/api/v1/connectivity-classes/hourly-sensors')).status).toBe(200);
        const without = await call('POST', '/api/v1/rollouts?dry_run=true', { ...spec, name: 'again' });
        expect(without.body).toMatchObject({ targets: 0, skipped_total: 2, by_status: { offline: 2 } });
      } finally {
        await t.close();
      }
    });

    it("SWUpdate's poll is told its class's interval, or a hold shorter than it", async () => {
      const { t, call, pollSleep } = await world();
      try {
        expect(await pollSleep('sensor-1')).toBe('00:05:00');
        expect((await call('PUT', '/api/v1/connectivity-classes/hourly-sensors', HOURLY)).status).toBe(201);
        expect(await pollSleep('sensor-1')).toBe('01:00:00');
        expect(await pollSleep('pos-1')).toBe('00:05:00');

        // A window that opens in 20 min holds both devices: each comes back at the opening or its interval.
        const created = await call('POST', '/api/v1/rollouts', {
          name: 'at 08:20',
          release: 'fw@2.0.0',
          filter: '',
          strategy: 'scheduled',
          window: { start: '08:20', end: '09:00', timezone: 'UTC' },
        });
        expect(created.status, JSON.stringify(created.body)).toBe(201);
        await t.engine.tick();
        expect(await pollSleep('sensor-1')).toBe('00:20:00');
        expect(await pollSleep('pos-1')).toBe('00:05:00');
      } finally {
        await t.close();
      }
    });
  });
});
