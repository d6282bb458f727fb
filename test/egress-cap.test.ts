/**
 * The fleet-wide egress cap: three devices of a rollout download a 2 MB artifact each at once through a server
 * capped at 2 MB/s; the bytes the server let through, over the transfer's duration, never exceed the cap (plus
 * the bucket's bounded burst). The pacing logic itself is checked on a fake clock in egress-limit's unit test.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { deviceCredential, hashSecret, splitDeviceCredential } from '../src/registry/credentials.js';
import { EgressLimit } from '../src/server/egress-limit.js';
import { type TestApp, testApp } from './support/app.js';

const CAP = 2_000_000; // 2 MB/s
const IMAGE = randomBytes(2_000_000);
const CHUNK = 64 * 1024; // what a file read stream hands on at most
const thresholds = { offlineAfterMs: 600_000, abandonedAfterMs: 30 * 86_400_000 };

describe('egress cap', () => {
  let t: TestApp;
  afterEach(() => t.close());

  it('a rollout with a 2 MB/s egress cap never exceeds it (bytes counted by the server)', async () => {
    const egress = new EgressLimit(CAP);
    t = await testApp(undefined, { egress });
    const ids = ['v1', 'v2', 'v3'];
    await t.store.importDevices(
      ids.map((id) => ({ id, hardwareType: 'van', firmwareVersion: '1.0.0' })),
      { now: t.clock.now(), thresholds },
      'test',
    );
    const credentials = new Map<string, string>();
    for (const id of ids) {
      const credential = deviceCredential(id);
      credentials.set(id, credential);
      const secret = splitDeviceCredential(credential)!.secret;
      await t.store.setCredential(id, hashSecret(secret), { now: t.clock.now(), thresholds }, 'test');
    }
    const up = await t.app.inject({
      method: 'POST',
      url: '/api/v1/artifacts?name=van-os&version=2.0.0&hardware=van',
      headers: { ...t.admin, 'content-type': 'application/octet-stream' },
      payload: IMAGE,
    });
    expect(up.statusCode, up.body).toBe(201);
    const sha256 = up.json().sha256 as string;
    const rollout = await t.app.inject({
      method: 'POST',
      url: '/api/v1/rollouts',
      headers: t.admin,
      payload: { name: 'vans', release: 'van-os@2.0.0', filter: 'hardware=van', strategy: 'immediate' },
    });
    expect(rollout.statusCode, rollout.body).toBe(201);
    await t.engine.tick();
    for (const id of ids) {
      const beat = await t.app.inject({
        method: 'POST',
        url: '/api/device/v1/heartbeat',
        headers: { authorization: `Bearer ${credentials.get(id)}` },
        payload: { device_id: id, firmware_version: '1.0.0' },
      });
      expect(beat.json().pending_updates, beat.body).toHaveLength(1);
    }

    const started = performance.now();
    const downloads = await Promise.all(
      ids.map((id) =>
        t.app.inject({
          method: 'GET',
          url: `/api/device/v1/artifacts/${sha256}`,
          headers: { authorization: `Bearer ${credentials.get(id)}` },
        }),
      ),
    );
    const seconds = (performance.now() - started) / 1000;
    for (const d of downloads) expect(d.rawPayload.equals(IMAGE)).toBe(true);
    expect(egress.sent).toBe(3 * IMAGE.length);
    // Never above the cap: what left is at most the cap over the time taken, plus one burst and one chunk.
    expect(egress.sent).toBeLessThanOrEqual(CAP * seconds + egress.burst + CHUNK);
    console.log(
      `egress cap ${CAP / 1e6} MB/s: ${egress.sent} bytes in ${seconds.toFixed(2)} s = ${(egress.sent / seconds / 1e6).toFixed(2)} MB/s`,
    );
  });
});
