/**
 * Agentless deliveries under the egress cap (docs/bandwidth.md, docs/agentless.md): a delivery takes one of the
 * cap's download slots like an agent's download, waits while the slots are taken, and its pushed bytes pass the
 * server's egress bucket and the download's own limit. Against a real loopback HTTP endpoint on every store
 * backend; the download's own limit is paced in virtual time, so nothing is asserted on wall-clock time.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { DOWNLOAD_FLOOR_BYTES_PER_SEC, EGRESS_HOLD_REASON } from '../src/core/rollout/egress-slots.js';
import { TokenBucket } from '../src/core/token-bucket.js';
import { deviceCredential, hashSecret, splitDeviceCredential } from '../src/registry/credentials.js';
import { EgressLimit } from '../src/server/egress-limit.js';
import { type TestApp, testApp } from './support/app.js';
import { forEachBackend } from './support/stores.js';

const thresholds = { offlineAfterMs: 600_000, abandonedAfterMs: 30 * 86_400_000 };
/** Three chunks of the blob store's reads (128 KiB): the cap's bucket lets it through in about a third of a second. */
const IMAGE = randomBytes(300_000);
const CHUNK = 128 * 1024;
const RATE = 10_000; // the kiosks' 10kB/s, paced in virtual time

async function startEndpoint() {
  const received: Buffer[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => {
      received.push(Buffer.concat(chunks));
      response.writeHead(200).end('installed');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/update`;
  return { url, received, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

forEachBackend((backend) => {
  it('a delivery waits for a free download slot under the egress cap, and its bytes pass the cap and the device’s rate', async () => {
    const egress = new EgressLimit(2 * DOWNLOAD_FLOOR_BYTES_PER_SEC - 1); // one download at a time
    const virtual = {
      at: 0,
      now: () => virtual.at,
      wait: async (ms: number) => {
        virtual.at += ms;
      },
    };
    t = await testApp(undefined, { store: await backend.open(), egress, pacing: virtual });
    const app = t;
    const ctx = { now: app.clock.now(), thresholds };
    const ids = ['van-1', 'kiosk-1', 'kiosk-2'];
    await app.store.importDevices(
      // The kiosks' link is slow: their tag is their download's own limit (the cap's slots use the rollout's).
      ids.map((id) => ({
        id,
        hardwareType: 'gw',
        firmwareVersion: '1.0.0',
        ...(id.startsWith('kiosk') ? { tags: { download_rate_limit: '10kB/s' } } : {}),
      })),
      ctx,
      'test',
    );
    const credential = deviceCredential('van-1');
    await app.store.setCredential(
      'van-1',
      hashSecret(splitDeviceCredential(credential)!.secret),
      ctx,
      'test',
    );
    const endpoint = await startEndpoint();
    try {
      for (const id of ['kiosk-1', 'kiosk-2']) {
        const put = await app.app.inject({
          method: 'PUT',
          url: `/api/v1/devices/${id}/delivery`,
          headers: app.admin,
          payload: { method: 'http_push', url: endpoint.url },
        });
        expect(put.statusCode, put.body).toBe(200);
      }
      const up = await app.app.inject({
        method: 'POST',
        url: '/api/v1/artifacts?name=gw-app&version=2.0.0&hardware=gw',
        headers: { ...app.admin, 'content-type': 'application/octet-stream' },
        payload: IMAGE,
      });
      expect(up.statusCode, up.body).toBe(201);
      const created = await app.app.inject({
        method: 'POST',
        url: '/api/v1/rollouts',
        headers: app.admin,
        payload: {
          name: 'gateways',
          release: 'gw-app@2.0.0',
          filter: 'hardware=gw',
          strategy: 'immediate',
        },
      });
      expect(created.statusCode, created.body).toBe(201);
      await app.engine.tick();
      const deliverAll = async () => {
        await app.delivery.pass();
        await app.delivery.idle();
      };
      const stateOf = async (id: string) =>
        (await app.store.updates.list({ deviceId: id, limit: 5 }))[0]!.state;

      // The agent's download takes the one slot: no delivery starts, and the devices are held with the reason.
      const beat = await app.app.inject({
        method: 'POST',
        url: '/api/device/v1/heartbeat',
        headers: { authorization: `Bearer ${credential}` },
        payload: { device_id: 'van-1', firmware_version: '1.0.0' },
      });
      const agentUpdate = beat.json().pending_updates[0];
      expect(agentUpdate.state, beat.body).toBe('notified');
      await deliverAll();
      expect(endpoint.received).toHaveLength(0);
      expect([await stateOf('kiosk-1'), await stateOf('kiosk-2')]).toEqual(['pending', 'pending']);
      const held = await app.store.updates.offer(['kiosk-1'], ctx, { egressCap: egress.bytesPerSec });
      expect(held.get('kiosk-1')![0]!.holdReason).toBe(EGRESS_HOLD_REASON);

      // Downloaded: the slot goes to one delivery, whose bytes pass the cap's bucket and the device's own rate.
      for (const [seq, state] of [
        [1, 'downloading'],
        [2, 'installing'],
      ] as const) {
        const r = await app.app.inject({
          method: 'POST',
          url: `/api/device/v1/updates/${agentUpdate.id}/status`,
          headers: { authorization: `Bearer ${credential}` },
          payload: { seq, state },
        });
        expect(r.statusCode, r.body).toBe(200);
      }
      await deliverAll();
      expect(endpoint.received).toHaveLength(1);
      expect(endpoint.received[0]!.equals(IMAGE)).toBe(true);
      expect(egress.sent).toBe(IMAGE.length);
      // Beyond the first burst and the last chunk (which may go into debt), the bytes waited for 10kB/s.
      expect(virtual.at).toBeGreaterThanOrEqual(TokenBucket.minimumMs(IMAGE.length, RATE, RATE / 4, CHUNK));
      expect((await stateOf('kiosk-1')) === 'succeeded' || (await stateOf('kiosk-2')) === 'succeeded').toBe(
        true,
      );

      // The delivery ended (installing frees its slot): the other one goes next.
      await deliverAll();
      expect(endpoint.received).toHaveLength(2);
      expect(egress.sent).toBe(2 * IMAGE.length);
      expect([await stateOf('kiosk-1'), await stateOf('kiosk-2')]).toEqual(['succeeded', 'succeeded']);
    } finally {
      await endpoint.close();
    }
  });
});
