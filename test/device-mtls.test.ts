/**
 * Devices over mutual TLS, end to end on every store backend: curl enrolls with a CSR made by `openssl req`,
 * heartbeats with the certificate it got, renews it, and is refused (401 with the reason, and an event) once
 * revoked; expired, not-yet-valid, wrong-CA and self-signed certificates are refused the same way; a certificate
 * of one device used for another is 403; bad CSRs are 400 and write nothing; `--device-auth mtls` refuses bearer.
 */
import { readFileSync } from 'node:fs';
import { beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_THRESHOLDS } from '../src/core/device.js';
import { hashSecret } from '../src/registry/credentials.js';
import { FLEETD_ISSUER, type Store } from '../src/store/store.js';
import {
  curl,
  type MtlsServer,
  makeCsr,
  openssl,
  run,
  startMtlsServer,
  writeFile,
} from './support/mtls-server.js';
import { forEachBackend } from './support/stores.js';

const DAY = 86_400_000;
const TOKEN = 'fld_enroll_test-token';

async function withToken(store: Store, now: number): Promise<void> {
  const token = { id: 'tok', usesLeft: null, expiresAt: null, tags: {}, createdAt: now };
  await store.createEnrollmentToken(token, hashSecret(TOKEN), 'test');
}

/** Enrolls `id` with a fresh key and CSR; its certificate is `<name>.crt`, its key `<name>.key`. */
async function enroll(server: MtlsServer, id: string, name = id) {
  const csr = await makeCsr(server, name, id);
  const reply = await curl(server, 'POST', '/api/device/v1/enroll', {
    json: { enrollment_token: TOKEN, device_id: id, csr },
  });
  expect(reply.status, JSON.stringify(reply.body)).toBe(201);
  writeFile(server, `${name}.crt`, reply.body.certificate);
  return reply.body as { device_id: string; certificate: string; ca_certificate: string; expires_at: string };
}

const heartbeat = (server: MtlsServer, name: string, deviceId: string) =>
  curl(server, 'POST', '/api/device/v1/heartbeat', {
    cert: `${name}.crt`,
    key: `${name}.key`,
    json: { device_id: deviceId, firmware_version: '1.0.0' },
  });

async function refusals(store: Store) {
  return store.listEvents({ after: 0, limit: 100, typePrefix: 'device.auth_refused' });
}

forEachBackend((backend) => {
  describe('with both ways of authenticating (default)', () => {
    let server: MtlsServer;
    beforeEach(async () => {
      const store = await backend.open();
      server = await startMtlsServer(store);
      await withToken(store, server.clock.now());
      return () => server.close();
    });

    it('enrolls with a CSR, heartbeats with the certificate, renews with no gap', async () => {
      const enrolled = await enroll(server, 'dev-1');
      expect(enrolled).not.toHaveProperty('credential');
      expect(enrolled.ca_certificate).toBe(readFileSync(server.caFile, 'utf8'));
      expect(Date.parse(enrolled.expires_at)).toBeGreaterThan(server.clock.now() + 89 * DAY);
      // openssl agrees the certificate chains to the FleetD CA and names the device.
      const { stdout } = await run('openssl', ['verify', '-CAfile', server.caFile, 'dev-1.crt'], {
        cwd: server.dir,
      });
      expect(stdout).toContain('dev-1.crt: OK');

      const beat = await heartbeat(server, 'dev-1', 'dev-1');
      expect(beat.status, JSON.stringify(beat.body)).toBe(200);
      expect(beat.body).toMatchObject({ pending_updates: [] });
      // Other calls know the device by its certificate too: this report is judged as dev-1's (no such update).
      const report = await curl(server, 'POST', '/api/device/v1/updates/upd_none/status', {
        cert: 'dev-1.crt',
        key: 'dev-1.key',
        json: { seq: 1, state: 'notified' },
      });
      expect(report.body.error).toEqual({
        code: 'NOT_FOUND',
        message: "update upd_none is not one of this device's updates",
      });

      // A minute later (less than the skew certificates start in the past with, so curl's real clock accepts it).
      server.clock.advance(60_000);
      const csr = await makeCsr(server, 'dev-1-new', 'dev-1');
      const renewed = await curl(server, 'POST', '/api/device/v1/certificate', {
        cert: 'dev-1.crt',
        key: 'dev-1.key',
        json: { csr },
      });
      expect(renewed.status, JSON.stringify(renewed.body)).toBe(200);
      expect(Date.parse(renewed.body.expires_at)).toBeGreaterThan(Date.parse(enrolled.expires_at));
      writeFile(server, 'dev-1-new.crt', renewed.body.certificate);
      expect((await heartbeat(server, 'dev-1-new', 'dev-1')).status).toBe(200);
      expect((await heartbeat(server, 'dev-1', 'dev-1')).status).toBe(200);
      const device = await server.store.getDevice('dev-1', {
        now: server.clock.now(),
        thresholds: DEFAULT_THRESHOLDS,
      });
      expect(device?.firmwareVersion).toBe('1.0.0');
    });

    it('a revoked certificate is refused at once, with an event, and listed in the CRL', async () => {
      await enroll(server, 'dev-1');
      expect((await heartbeat(server, 'dev-1', 'dev-1')).status).toBe(200);
      const revoke = await server.app.inject({
        method: 'POST',
        url: '/api/v1/devices/dev-1/revoke-certificates',
        headers: server.admin,
      });
      expect(revoke.json()).toEqual({ device_id: 'dev-1', revoked: 1 });

      const refused = await heartbeat(server, 'dev-1', 'dev-1');
      expect(refused.status).toBe(401);
      expect(refused.body.error).toMatchObject({
        code: 'UNAUTHENTICATED',
        message: expect.stringContaining('revoked'),
      });
      const report = await curl(server, 'POST', '/api/device/v1/certificate', {
        cert: 'dev-1.crt',
        key: 'dev-1.key',
        json: { csr: await makeCsr(server, 'again', 'dev-1') },
      });
      expect(report.status).toBe(401);
      expect(await refusals(server.store)).toMatchObject([
        {
          data: {
            reason: 'certificate_unknown_or_revoked',
            method: 'certificate',
            path: '/api/device/v1/heartbeat',
          },
        },
        { data: { reason: 'certificate_unknown_or_revoked', path: '/api/device/v1/certificate' } },
      ]);

      const [revoked] = await server.store.certificates.revoked(FLEETD_ISSUER);
      const crl = await curl(server, 'GET', '/api/v1/pki/crl');
      expect(crl.status).toBe(200);
      writeFile(server, 'fleetd.crl', crl.body);
      const { stdout } = await run(
        'openssl',
        ['crl', '-in', 'fleetd.crl', '-CAfile', server.caFile, '-noout', '-text'],
        { cwd: server.dir },
      );
      expect(stdout.toLowerCase().replace(/[^0-9a-z\n:]/g, '')).toContain(`serialnumber:${revoked!.serial}`);
      const der = await server.app.inject({ method: 'GET', url: '/api/v1/pki/crl?format=der' });
      expect(der.headers['content-type']).toBe('application/pkix-crl');
      expect(der.rawPayload[0]).toBe(0x30);
    });

    it('a certificate of one device used for another is forbidden, with an event', async () => {
      await enroll(server, 'dev-a');
      await enroll(server, 'dev-b');
      const impersonation = await heartbeat(server, 'dev-a', 'dev-b');
      expect(impersonation.status).toBe(403);
      expect(impersonation.body.error).toMatchObject({
        code: 'FORBIDDEN',
        message: expect.stringContaining('a device may only act as itself'),
      });
      expect(await refusals(server.store)).toMatchObject([
        { deviceId: 'dev-a', data: { reason: 'other_device' } },
      ]);
      const device = await server.store.getDevice('dev-b', {
        now: server.clock.now(),
        thresholds: DEFAULT_THRESHOLDS,
      });
      expect(device?.lastSeen).toBeNull();
    });

    it('refuses expired and not-yet-valid certificates with the reason', async () => {
      const start = server.clock.now();
      server.clock.set(start - 100 * DAY);
      await enroll(server, 'dev-old');
      server.clock.set(start + 2 * DAY);
      await enroll(server, 'dev-future');
      server.clock.set(start);

      const expired = await heartbeat(server, 'dev-old', 'dev-old');
      expect(expired.status).toBe(401);
      expect(expired.body.error.message).toBe('the client certificate has expired (CERT_HAS_EXPIRED)');
      const early = await heartbeat(server, 'dev-future', 'dev-future');
      expect(early.status).toBe(401);
      expect(early.body.error.message).toBe('the client certificate is not yet valid (CERT_NOT_YET_VALID)');
      expect((await refusals(server.store)).map((e) => e.data.reason)).toEqual([
        'CERT_HAS_EXPIRED',
        'CERT_NOT_YET_VALID',
      ]);
    });

    it('refuses a certificate from another CA and a self-signed one', async () => {
      await enroll(server, 'dev-1');
      // Another CA, made by openssl, signs a certificate for the same device and key.
      await openssl(server, [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        'rogue-ca.key',
        '-out',
        'rogue-ca.crt',
        '-subj',
        '/CN=Rogue CA',
        '-days',
        '30',
      ]);
      await openssl(server, [
        'x509',
        '-req',
        '-in',
        'dev-1.csr',
        '-CA',
        'rogue-ca.crt',
        '-CAkey',
        'rogue-ca.key',
        '-CAcreateserial',
        '-out',
        'rogue.crt',
        '-days',
        '30',
      ]);
      await openssl(server, [
        'req',
        '-x509',
        '-key',
        'dev-1.key',
        '-out',
        'self.crt',
        '-subj',
        '/CN=dev-1',
        '-days',
        '30',
      ]);

      const wrongCa = await curl(server, 'POST', '/api/device/v1/heartbeat', {
        cert: 'rogue.crt',
        key: 'dev-1.key',
        json: { device_id: 'dev-1' },
      });
      expect(wrongCa.status).toBe(401);
      expect(wrongCa.body.error.message).toContain('issued by a CA this server does not trust');
      const self = await curl(server, 'POST', '/api/device/v1/heartbeat', {
        cert: 'self.crt',
        key: 'dev-1.key',
        json: { device_id: 'dev-1' },
      });
      expect(self.status).toBe(401);
      expect(self.body.error.message).toBe(
        'the client certificate is self-signed (DEPTH_ZERO_SELF_SIGNED_CERT)',
      );
      expect((await refusals(server.store)).map((e) => e.data.reason)).toEqual([
        'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
        'DEPTH_ZERO_SELF_SIGNED_CERT',
      ]);
      const device = await server.store.getDevice('dev-1', {
        now: server.clock.now(),
        thresholds: DEFAULT_THRESHOLDS,
      });
      expect(device?.lastSeen).toBeNull();
    });

    it('refuses a CSR naming another device and a malformed one, writing nothing', async () => {
      const other = await makeCsr(server, 'other', 'dev-2');
      const mismatch = await curl(server, 'POST', '/api/device/v1/enroll', {
        json: { enrollment_token: TOKEN, device_id: 'dev-1', csr: other },
      });
      expect(mismatch.status).toBe(400);
      expect(mismatch.body.error.code).toBe('CSR_DEVICE_MISMATCH');
      for (const csr of [
        'not a csr',
        '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n',
      ]) {
        const bad = await curl(server, 'POST', '/api/device/v1/enroll', {
          json: { enrollment_token: TOKEN, device_id: 'dev-1', csr },
        });
        expect(bad.status).toBe(400);
        expect(bad.body.error.code).toBe('CSR_INVALID');
      }
      const ctx = { now: server.clock.now(), thresholds: DEFAULT_THRESHOLDS };
      expect(await server.store.getDevice('dev-1', ctx)).toBeUndefined();

      // Renewal checks the CSR the same way: a device cannot get a certificate for another.
      await enroll(server, 'dev-1');
      const renewal = await curl(server, 'POST', '/api/device/v1/certificate', {
        cert: 'dev-1.crt',
        key: 'dev-1.key',
        json: { csr: other },
      });
      expect(renewal.status).toBe(400);
      expect(renewal.body.error.code).toBe('CSR_DEVICE_MISMATCH');
      expect(await server.store.certificates.ofDevice('dev-1')).toHaveLength(1);
    });

    it('a device with a bearer credential gets its first certificate; a refused certificate is not rescued by it', async () => {
      await server.store.importDevices(
        [{ id: 'dev-1' }],
        { now: server.clock.now(), thresholds: DEFAULT_THRESHOLDS },
        'test',
      );
      const issued = await server.app.inject({
        method: 'POST',
        url: '/api/v1/devices/dev-1/credential',
        headers: server.admin,
      });
      const credential = issued.json().credential as string;
      const first = await curl(server, 'POST', '/api/device/v1/certificate', {
        bearer: credential,
        json: { csr: await makeCsr(server, 'dev-1', 'dev-1') },
      });
      expect(first.status, JSON.stringify(first.body)).toBe(200);
      writeFile(server, 'dev-1.crt', first.body.certificate);
      expect((await heartbeat(server, 'dev-1', 'dev-1')).status).toBe(200);

      await openssl(server, [
        'req',
        '-x509',
        '-key',
        'dev-1.key',
        '-out',
        'self.crt',
        '-subj',
        '/CN=dev-1',
        '-days',
        '30',
      ]);
      const both = await curl(server, 'POST', '/api/device/v1/heartbeat', {
        cert: 'self.crt',
        key: 'dev-1.key',
        bearer: credential,
        json: { device_id: 'dev-1' },
      });
      expect(both.status).toBe(401);
      expect(both.body.error.message).toContain('self-signed');
    });

    it('decommissioning stops the certificate', async () => {
      await enroll(server, 'dev-1');
      const retire = await server.app.inject({
        method: 'POST',
        url: '/api/v1/devices/dev-1/decommission',
        headers: server.admin,
      });
      expect(retire.statusCode).toBe(200);
      expect((await heartbeat(server, 'dev-1', 'dev-1')).status).toBe(401);
    });
  });

  describe('with --device-auth mtls', () => {
    let server: MtlsServer;
    beforeEach(async () => {
      const store = await backend.open();
      server = await startMtlsServer(store, { deviceAuth: 'mtls' });
      await withToken(store, server.clock.now());
      return () => server.close();
    });

    it('refuses bearer credentials and enrollment without a CSR, and accepts certificates', async () => {
      const bare = await curl(server, 'POST', '/api/device/v1/enroll', {
        json: { enrollment_token: TOKEN, device_id: 'dev-1' },
      });
      expect(bare.status).toBe(401);
      expect(bare.body.error.code).toBe('CERTIFICATE_REQUIRED');

      await enroll(server, 'dev-1');
      const issued = await server.app.inject({
        method: 'POST',
        url: '/api/v1/devices/dev-1/credential',
        headers: server.admin,
      });
      const credential = issued.json().credential as string;
      const bearer = await curl(server, 'POST', '/api/device/v1/heartbeat', {
        bearer: credential,
        json: { device_id: 'dev-1' },
      });
      expect(bearer.status).toBe(401);
      expect(bearer.body.error.code).toBe('CERTIFICATE_REQUIRED');
      const events = await refusals(server.store);
      expect(events).toMatchObject([{ data: { reason: 'certificate_required', method: 'credential' } }]);
      expect(JSON.stringify(events)).not.toContain(credential.split('.').pop());

      expect((await heartbeat(server, 'dev-1', 'dev-1')).status).toBe(200);
    });
  });
});
