/**
 * Signed artifact links: with them set, a device's heartbeat hands it a link on the cache's origin that downloads
 * without any credential until it expires (by the injected clock); a changed or expired link is refused with the
 * error shape, and the device API's own download still wants the credential.
 */
import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { deviceCredential, hashSecret, splitDeviceCredential } from '../src/registry/credentials.js';
import { type TestApp, testApp } from './support/app.js';

const IMAGE = randomBytes(64 * 1024);
const thresholds = { offlineAfterMs: 600_000, abandonedAfterMs: 30 * 86_400_000 };

for (const form of ['nginx', 'hmac'] as const) {
  describe(`signed artifact links (${form})`, () => {
    let t: TestApp;
    beforeEach(async () => {
      t = await testApp(undefined, {
        signedUrls: { baseUrl: 'https://cdn.example.com', secret: 's'.repeat(40), form, ttlMs: 3600_000 },
      });
      return () => t.close();
    });

    it('the heartbeat offers a link that downloads without a credential until it expires', async () => {
      await t.store.importDevices(
        [{ id: 'd1', hardwareType: 'hw' }],
        { now: t.clock.now(), thresholds },
        'test',
      );
      const credential = deviceCredential('d1');
      await t.store.setCredential(
        'd1',
        hashSecret(splitDeviceCredential(credential)!.secret),
        { now: t.clock.now(), thresholds },
        'test',
      );
      const up = await t.app.inject({
        method: 'POST',
        url: '/api/v1/artifacts?name=fw&version=2.0.0&hardware=hw',
        headers: { ...t.admin, 'content-type': 'application/octet-stream' },
        payload: IMAGE,
      });
      expect(up.statusCode, up.body).toBe(201);
      const assigned = await t.app.inject({
        method: 'POST',
        url: '/api/v1/updates/assign',
        headers: t.admin,
        payload: { devices: ['d1'], release: 'fw@2.0.0' },
      });
      expect(assigned.statusCode, assigned.body).toBeLessThan(300);

      const heartbeat = async () => {
        const beat = await t.app.inject({
          method: 'POST',
          url: '/api/device/v1/heartbeat',
          headers: { authorization: `Bearer ${credential}` },
          payload: { device_id: 'd1', firmware_version: '1.0.0' },
        });
        expect(beat.statusCode, beat.body).toBe(200);
        return beat.json().pending_updates[0].download_url as string;
      };
      const first = await heartbeat();
      t.clock.advance(10 * 60_000);
      // The same link for a while: the agent resumes a download only from the URL it started with.
      expect(await heartbeat()).toBe(first);
      const link = new URL(first);
      expect(link.origin).toBe('https://cdn.example.com');
      expect(link.searchParams.get(form === 'nginx' ? 'md5' : 'sig')).toMatch(/^[\w-]{20,}$/);

      const path = `${link.pathname}${link.search}`;
      const got = await t.app.inject({ method: 'GET', url: path });
      expect(got.statusCode).toBe(200);
      expect(got.rawPayload.equals(IMAGE)).toBe(true);
      const ranged = await t.app.inject({ method: 'GET', url: path, headers: { range: 'bytes=100-199' } });
      expect(ranged.statusCode).toBe(206);

      const other = path.replace(/\/[0-9a-f]{64}\?/, `/${'0'.repeat(64)}?`);
      const forged = await t.app.inject({ method: 'GET', url: other });
      expect(forged.statusCode).toBe(403);
      expect(forged.json()).toMatchObject({
        error: { code: 'FORBIDDEN', message: expect.stringContaining('not signed') },
      });
      expect((await t.app.inject({ method: 'GET', url: link.pathname })).statusCode).toBe(403);

      t.clock.advance(50 * 60_000);
      const late = await t.app.inject({ method: 'GET', url: path });
      expect(late.statusCode).toBe(403);
      expect(late.json().error.message).toContain('expired');
    });
  });
}
