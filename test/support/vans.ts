/**
 * A fleet of vans in an in-process app, for the bandwidth tests (rate limits, metered links, budgets): devices
 * of hardware `van` on firmware 1.0.0 with credentials, their release `van-os`, immediate rollouts to all of
 * them, and what a van's heartbeat is offered.
 */
import { expect } from 'vitest';
import type { PendingUpdateJson } from '../../src/protocol/device-api.js';
import { deviceCredential, hashSecret, splitDeviceCredential } from '../../src/registry/credentials.js';
import type { TestApp } from './app.js';

const thresholds = { offlineAfterMs: 600_000, abandonedAfterMs: 30 * 86_400_000 };

export interface Vans {
  /** Each van's bearer credential, by id. */
  credentials: Map<string, string>;
  /** A heartbeat of `id` running `firmware`: the one update it is offered. */
  offer(id: string, firmware?: string, metrics?: Record<string, unknown>): Promise<PendingUpdateJson>;
  /** `id` reports the update downloading, installing, then succeeded. */
  install(id: string, updateId: string): Promise<void>;
}

export async function vanFleet(
  app: TestApp,
  devices: Array<{ id: string; tags?: Record<string, string> }>,
): Promise<Vans> {
  const ctx = { now: app.clock.now(), thresholds };
  await app.store.importDevices(
    devices.map((d) => ({ ...d, hardwareType: 'van', firmwareVersion: '1.0.0' })),
    ctx,
    'test',
  );
  const credentials = new Map<string, string>();
  for (const { id } of devices) {
    const credential = deviceCredential(id);
    credentials.set(id, credential);
    await app.store.setCredential(id, hashSecret(splitDeviceCredential(credential)!.secret), ctx, 'test');
  }
  const device = (id: string) => ({ authorization: `Bearer ${credentials.get(id)}` });
  return {
    credentials,
    async offer(id, firmware = '1.0.0', metrics) {
      const r = await app.app.inject({
        method: 'POST',
        url: '/api/device/v1/heartbeat',
        headers: device(id),
        payload: { device_id: id, firmware_version: firmware, ...(metrics ? { metrics } : {}) },
      });
      expect(r.statusCode, r.body).toBe(200);
      const pending = r.json().pending_updates;
      expect(pending, r.body).toHaveLength(1);
      return pending[0];
    },
    async install(id, updateId) {
      for (const [seq, state] of [
        [1, 'downloading'],
        [2, 'installing'],
        [3, 'succeeded'],
      ] as const) {
        const r = await app.app.inject({
          method: 'POST',
          url: `/api/device/v1/updates/${updateId}/status`,
          headers: device(id),
          payload: { seq, state },
        });
        expect(r.statusCode, r.body).toBe(200);
      }
    },
  };
}

/** Uploads `van-os@VERSION` for vans; resolves with its sha256. */
export async function uploadVanOs(app: TestApp, version: string, image: Buffer): Promise<string> {
  const up = await app.app.inject({
    method: 'POST',
    url: `/api/v1/artifacts?name=van-os&version=${version}&hardware=van`,
    headers: { ...app.admin, 'content-type': 'application/octet-stream' },
    payload: image,
  });
  expect(up.statusCode, up.body).toBe(201);
  return up.json().sha256;
}

/** An immediate rollout of `van-os@VERSION` to every van, taken up by the engine at once; its JSON. */
export async function vanRollout(app: TestApp, version: string, extra: Record<string, unknown>) {
  const r = await app.app.inject({
    method: 'POST',
    url: '/api/v1/rollouts',
    headers: app.admin,
    payload: {
      name: `vans-${version}`,
      release: `van-os@${version}`,
      filter: 'hardware=van',
      strategy: 'immediate',
      ...extra,
    },
  });
  expect(r.statusCode, r.body).toBe(201);
  await app.engine.tick();
  return r.json();
}
