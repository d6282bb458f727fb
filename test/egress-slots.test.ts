/**
 * The egress cap as download slots (docs/bandwidth.md): with `--egress-cap` set, the offer grants no more
 * downloads at once than the cap serves at the per-download floor; a device past that is held with the reason,
 * and is granted once a download finishes. In process, on SQLite and PostgreSQL (the count of downloads under way).
 */
import { randomBytes } from 'node:crypto';
import { afterEach, expect, it } from 'vitest';
import { DOWNLOAD_FLOOR_BYTES_PER_SEC, EGRESS_HOLD_REASON } from '../src/core/rollout/egress-slots.js';
import { deviceCredential, hashSecret, splitDeviceCredential } from '../src/registry/credentials.js';
import { EgressLimit } from '../src/server/egress-limit.js';
import { type TestApp, testApp } from './support/app.js';
import { forEachBackend } from './support/stores.js';

const thresholds = { offlineAfterMs: 600_000, abandonedAfterMs: 30 * 86_400_000 };
const DEVICES = ['van-1', 'van-2', 'van-3'];

let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

forEachBackend((backend) => {
  it('grants only the downloads the egress cap serves, holds the next with the reason, and grants it when one finishes', async () => {
    // Room for two downloads at the floor's rate; the rollout itself would allow all three.
    t = await testApp(undefined, {
      store: await backend.open(),
      egress: new EgressLimit(2 * DOWNLOAD_FLOOR_BYTES_PER_SEC),
    });
    const app = t;
    const ctx = { now: app.clock.now(), thresholds };
    await app.store.importDevices(
      DEVICES.map((id) => ({ id, hardwareType: 'van', firmwareVersion: '1.0.0' })),
      ctx,
      'test',
    );
    const credentials = new Map<string, string>();
    for (const id of DEVICES) {
      const credential = deviceCredential(id);
      credentials.set(id, credential);
      await app.store.setCredential(id, hashSecret(splitDeviceCredential(credential)!.secret), ctx, 'test');
    }
    const up = await app.app.inject({
      method: 'POST',
      url: '/api/v1/artifacts?name=van-os&version=2.0.0&hardware=van',
      headers: { ...app.admin, 'content-type': 'application/octet-stream' },
      payload: randomBytes(10_000),
    });
    expect(up.statusCode, up.body).toBe(201);
    const created = await app.app.inject({
      method: 'POST',
      url: '/api/v1/rollouts',
      headers: app.admin,
      payload: {
        name: 'vans',
        release: 'van-os@2.0.0',
        filter: 'hardware=van',
        strategy: 'immediate',
        max_concurrent: 10,
      },
    });
    expect(created.statusCode, created.body).toBe(201);
    await app.engine.tick();

    // One heartbeat each, in turn: the count of downloads under way is read from the database, not the batch.
    const offer = async (id: string) => {
      const beat = await app.app.inject({
        method: 'POST',
        url: '/api/device/v1/heartbeat',
        headers: { authorization: `Bearer ${credentials.get(id)}` },
        payload: { device_id: id, firmware_version: '1.0.0' },
      });
      expect(beat.statusCode, beat.body).toBe(200);
      const pending = beat.json().pending_updates;
      expect(pending, beat.body).toHaveLength(1);
      return pending[0];
    };
    const report = async (id: string, updateId: string, seq: number, state: string) => {
      const r = await app.app.inject({
        method: 'POST',
        url: `/api/device/v1/updates/${updateId}/status`,
        headers: { authorization: `Bearer ${credentials.get(id)}` },
        payload: { seq, state },
      });
      expect(r.statusCode, r.body).toBe(200);
    };

    const first = await offer('van-1');
    const second = await offer('van-2');
    expect(first.state).toBe('notified');
    expect(second.state).toBe('notified');
    const held = await offer('van-3');
    expect(held.state).toBe('pending');
    expect(held.hold_reason).toBe(EGRESS_HOLD_REASON);
    expect(held.retry_after).toBe(60);

    // A download under way still takes its share of the cap.
    await report('van-1', first.id, 1, 'downloading');
    expect((await offer('van-3')).state).toBe('pending');

    // Downloaded: installing sends no bytes, so the share is free again.
    await report('van-1', first.id, 2, 'installing');
    const granted = await offer('van-3');
    expect(granted.state).toBe('notified');
    expect(granted.hold_reason).toBeUndefined();
  });

  it('rollouts granting at the same instant on two replicas never pass the slots together', async () => {
    // One slot under the cap; one rollout per device, so each grant is decided under a different rollout's lock.
    const [mine, other] =
      backend.dialect === 'postgres' ? await backend.openPair() : [await backend.open(), undefined];
    t = await testApp(undefined, { store: mine!, egress: new EgressLimit(DOWNLOAD_FLOOR_BYTES_PER_SEC) });
    const app = t;
    const ids = Array.from({ length: 12 }, (_, i) => `van-${i}`);
    const ctx = { now: app.clock.now(), thresholds };
    await app.store.importDevices(
      ids.map((id) => ({ id, hardwareType: 'van', firmwareVersion: '1.0.0' })),
      ctx,
      'test',
    );
    const up = await app.app.inject({
      method: 'POST',
      url: '/api/v1/artifacts?name=van-os&version=2.0.0&hardware=van',
      headers: { ...app.admin, 'content-type': 'application/octet-stream' },
      payload: randomBytes(10_000),
    });
    expect(up.statusCode, up.body).toBe(201);
    for (const id of ids) {
      const created = await app.app.inject({
        method: 'POST',
        url: '/api/v1/rollouts',
        headers: app.admin,
        payload: { name: id, release: 'van-os@2.0.0', filter: `id=${id}`, strategy: 'immediate' },
      });
      expect(created.statusCode, created.body).toBe(201);
    }
    await app.engine.tick();

    // Every device asks at once, half of them through the second replica's store (SQLite has one writer).
    const replicas = [mine!, other ?? mine!];
    const offers = await Promise.all(
      ids.map((id, i) =>
        replicas[i % 2]!.updates.offer([id], ctx, { egressCap: DOWNLOAD_FLOOR_BYTES_PER_SEC }),
      ),
    );
    const states = offers.flatMap((o) => [...o.values()].flat().map((u) => u.update.state));
    expect(states).toHaveLength(ids.length);
    expect(states.filter((s) => s === 'notified')).toHaveLength(1);
    expect(states.filter((s) => s === 'pending')).toHaveLength(ids.length - 1);
  });
});
