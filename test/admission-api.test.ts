/**
 * The approval queue over the real TLS listener (--tls auto, --enrollment approve), on every store backend: curl
 * asks to join without a token with an `openssl req` CSR and waits (202), is offered nothing, and gets its
 * certificate once an operator accepts it; another key for the same id cannot take its place; a rejected device
 * is refused; a device without a CSR proves itself with its request secret; a token-only server refuses all this.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { curl, type MtlsServer, makeCsr, startMtlsServer, writeFile } from './support/mtls-server.js';
import { forEachBackend } from './support/stores.js';

const ENROLL = '/api/device/v1/enroll';
const SECRET = 'a-request-secret-the-device-made-and-keeps-0123456789';

const decide = (server: MtlsServer, decision: 'accept' | 'reject', payload: Record<string, unknown>) =>
  server.app.inject({ method: 'POST', url: `/api/v1/devices/${decision}`, headers: server.admin, payload });

forEachBackend((backend) => {
  describe('with --enrollment approve', () => {
    let server: MtlsServer;
    beforeEach(async () => {
      server = await startMtlsServer(await backend.open(), { enrollment: 'approve' });
      return () => server.close();
    });

    it('queues a tokenless CSR (202), gives it nothing, and issues its certificate once accepted', async () => {
      const csr = await makeCsr(server, 'pos-1', 'pos-1');
      const asked = await curl(server, 'POST', ENROLL, { json: { device_id: 'pos-1', csr } });
      expect(asked.status).toBe(202);
      expect(asked.body).toMatchObject({ device_id: 'pos-1', admission: 'pending', retry_after: 60 });
      expect(asked.body).not.toHaveProperty('certificate');

      const queue = await server.app.inject({
        method: 'GET',
        url: '/api/v1/devices/pending',
        headers: server.admin,
      });
      expect(queue.json().devices).toMatchObject([{ device: { id: 'pos-1', admission: 'pending' } }]);
      expect(queue.json().devices[0].key_fingerprint).toMatch(/^[0-9a-f]{64}$/);

      // A waiting device holds nothing to heartbeat with, and an operator cannot hand it a credential (the store
      // test shows its heartbeat refused even with a certificate).
      const issued = await server.app.inject({
        method: 'POST',
        url: '/api/v1/devices/pos-1/credential',
        headers: server.admin,
      });
      expect(issued.statusCode).toBe(409);

      const still = await curl(server, 'POST', ENROLL, { json: { device_id: 'pos-1', csr } });
      expect(still.status).toBe(202);
      const accepted = await decide(server, 'accept', { ids: ['pos-1'] });
      expect(accepted.json()).toEqual({
        results: [{ id: 'pos-1', ok: true, admission: 'accepted' }],
        moved: 1,
      });

      const joined = await curl(server, 'POST', ENROLL, { json: { device_id: 'pos-1', csr } });
      expect(joined.status, JSON.stringify(joined.body)).toBe(201);
      writeFile(server, 'pos-1.crt', joined.body.certificate);
      const heartbeat = await curl(server, 'POST', '/api/device/v1/heartbeat', {
        cert: 'pos-1.crt',
        key: 'pos-1.key',
        json: { device_id: 'pos-1' },
      });
      expect(heartbeat.status, JSON.stringify(heartbeat.body)).toBe(200);
      const types = (await server.store.listEvents({ after: 0, limit: 20, deviceId: 'pos-1' })).map(
        (e) => e.type,
      );
      expect(types).toEqual(
        expect.arrayContaining(['device.admission_requested', 'device.accepted', 'device.enrolled']),
      );
    });

    it('lets no other key take a waiting place, before or after acceptance', async () => {
      const mine = await makeCsr(server, 'mine', 'pos-2');
      const theirs = await makeCsr(server, 'theirs', 'pos-2');
      expect((await curl(server, 'POST', ENROLL, { json: { device_id: 'pos-2', csr: mine } })).status).toBe(
        202,
      );
      const taken = await curl(server, 'POST', ENROLL, { json: { device_id: 'pos-2', csr: theirs } });
      expect(taken.status).toBe(403);
      expect(taken.body.error.code).toBe('ADMISSION_KEY_MISMATCH');
      await decide(server, 'accept', { ids: ['pos-2'] });
      const stolen = await curl(server, 'POST', ENROLL, { json: { device_id: 'pos-2', csr: theirs } });
      expect(stolen.body.error.code).toBe('ADMISSION_KEY_MISMATCH');
      expect(await server.store.certificates.ofDevice('pos-2')).toEqual([]);
    });

    it('refuses a rejected device when it asks again', async () => {
      const csr = await makeCsr(server, 'pos-3', 'pos-3');
      await curl(server, 'POST', ENROLL, { json: { device_id: 'pos-3', csr } });
      const rejected = await decide(server, 'reject', { filter: 'admission = pending and id = pos-3' });
      expect(rejected.json().moved).toBe(1);
      const refused = await curl(server, 'POST', ENROLL, { json: { device_id: 'pos-3', csr } });
      expect(refused.status).toBe(403);
      expect(refused.body.error.code).toBe('ENROLLMENT_REJECTED');
    });

    it('proves a device without a CSR by its request secret, and gives it a credential once accepted', async () => {
      const ask = (secret: string) =>
        curl(server, 'POST', ENROLL, { json: { device_id: 'pos-4', request_secret: secret } });
      expect((await ask(SECRET)).status).toBe(202);
      await decide(server, 'accept', { ids: ['pos-4'] });
      expect((await ask(`${SECRET}-not`)).body.error.code).toBe('ADMISSION_KEY_MISMATCH');
      const joined = await ask(SECRET);
      expect(joined.status).toBe(201);
      const heartbeat = await curl(server, 'POST', '/api/device/v1/heartbeat', {
        bearer: joined.body.credential,
        json: { device_id: 'pos-4' },
      });
      expect(heartbeat.status).toBe(200);
      const events = await server.store.listEvents({ after: 0, limit: 20, deviceId: 'pos-4' });
      expect(JSON.stringify(events)).not.toContain(SECRET);
    });

    it('needs a CSR or a request secret without a token, and reports bad ids per device', async () => {
      const bare = await curl(server, 'POST', ENROLL, { json: { device_id: 'pos-5' } });
      expect(bare.status).toBe(400);
      expect(bare.body.error.code).toBe('VALIDATION');
      const results = (await decide(server, 'accept', { ids: ['nobody'] })).json();
      expect(results).toMatchObject({
        moved: 0,
        results: [{ id: 'nobody', ok: false, error: { code: 'DEVICE_NOT_FOUND' } }],
      });
      const badFilter = await decide(server, 'accept', { filter: 'admission ==' });
      expect(badFilter.statusCode).toBe(400);
    });
  });

  describe('with --enrollment token (the default)', () => {
    let server: MtlsServer;
    beforeEach(async () => {
      server = await startMtlsServer(await backend.open());
      return () => server.close();
    });

    it('refuses a tokenless request and records nothing', async () => {
      const csr = await makeCsr(server, 'pos-6', 'pos-6');
      const refused = await curl(server, 'POST', ENROLL, { json: { device_id: 'pos-6', csr } });
      expect(refused.status).toBe(401);
      expect(refused.body.error.code).toBe('ENROLLMENT_INVALID');
      expect(
        await server.store.getDevice('pos-6', {
          now: 0,
          thresholds: { offlineAfterMs: 1, abandonedAfterMs: 2 },
        }),
      ).toBeUndefined();
    });
  });
});
