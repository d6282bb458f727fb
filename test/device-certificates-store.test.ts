/**
 * Device certificates in the store, on every backend: which device a fingerprint authenticates, heartbeats
 * proven by a certificate in their batch write, revocation (by an operator, by decommissioning) taking effect on
 * the next write of any handle on the database, and what a CRL lists.
 */
import { beforeEach, expect, it } from 'vitest';
import { DEFAULT_THRESHOLDS } from '../src/core/device.js';
import { hashSecret } from '../src/registry/credentials.js';
import type { SqlStore } from '../src/store/sql-store.js';
import { FLEETD_ISSUER, type NewDeviceCertificate, type TimeContext } from '../src/store/store.js';
import { forEachBackend } from './support/stores.js';

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const DAY = 86_400_000;
const ctx: TimeContext = { now: NOW, thresholds: DEFAULT_THRESHOLDS };

const fingerprintOf = (serial: string) => hashSecret(`der-of-${serial}`);
function certificate(serial: string, deviceId: string, issuer = FLEETD_ISSUER): NewDeviceCertificate {
  return {
    serial,
    deviceId,
    fingerprint: fingerprintOf(serial),
    issuer,
    notBefore: NOW - 60_000,
    notAfter: NOW + 90 * DAY,
    issuedAt: NOW,
  };
}
const byCertificate = (deviceId: string, serial: string) => ({
  heartbeat: { deviceId },
  certificateFingerprint: fingerprintOf(serial),
});

forEachBackend((backend) => {
  let store: SqlStore;
  beforeEach(async () => {
    store = await backend.open();
    await store.importDevices([{ id: 'dev-a' }, { id: 'dev-b' }], ctx, 'test');
  });

  it('finds the device of a recorded certificate, and none for an unknown fingerprint', async () => {
    await store.certificates.record(certificate('01', 'dev-a'), 'test');
    expect(await store.certificates.deviceOf(fingerprintOf('01'))).toBe('dev-a');
    expect(await store.certificates.deviceOf(fingerprintOf('02'))).toBeNull();
    const [issued] = await store.listEvents({ after: 0, limit: 10, typePrefix: 'device.certificate_issued' });
    expect(issued).toMatchObject({
      deviceId: 'dev-a',
      data: { serial: '01', fingerprint: fingerprintOf('01') },
    });
  });

  it('records certificates only for registered devices still in service', async () => {
    await expect(store.certificates.record(certificate('01', 'nobody'), 'test')).rejects.toMatchObject({
      code: 'DEVICE_NOT_FOUND',
    });
    await store.decommissionDevice('dev-b', ctx, 'test');
    await expect(store.certificates.record(certificate('02', 'dev-b'), 'test')).rejects.toMatchObject({
      code: 'DEVICE_DECOMMISSIONED',
    });
    expect(await store.certificates.ofDevice('dev-b')).toEqual([]);
  });

  it('accepts a heartbeat over a live certificate of its device and refuses one of another device', async () => {
    await store.certificates.record(certificate('01', 'dev-a'), 'test');
    const [own, other, unknown] = await store.recordHeartbeats(
      [byCertificate('dev-a', '01'), byCertificate('dev-b', '01'), byCertificate('dev-a', '99')],
      ctx,
    );
    expect(own).toMatchObject({ ok: true });
    expect(other).toEqual({ ok: false, reason: 'unauthenticated' });
    expect(unknown).toEqual({ ok: false, reason: 'unauthenticated' });
    expect((await store.getDevice('dev-a', ctx))?.lastSeen).toBe(NOW);
    expect((await store.getDevice('dev-b', ctx))?.lastSeen).toBeNull();
  });

  it('keeps the old certificate working after a renewal, until revoked', async () => {
    await store.certificates.record(certificate('01', 'dev-a'), 'test');
    await store.certificates.record({ ...certificate('02', 'dev-a'), issuedAt: NOW + DAY }, 'test');
    const outcomes = await store.recordHeartbeats(
      [byCertificate('dev-a', '01'), byCertificate('dev-a', '02')],
      ctx,
    );
    expect(outcomes.map((o) => o.ok)).toEqual([true, true]);
    expect((await store.certificates.ofDevice('dev-a')).map((c) => c.serial)).toEqual(['02', '01']);
  });

  it('a revocation on one handle refuses the next heartbeat and look-up on another', async () => {
    const [replica1, replica2] = await backend.openPair();
    await replica1.importDevices([{ id: 'dev-a' }], ctx, 'test');
    await replica1.certificates.record(certificate('01', 'dev-a'), 'test');
    await replica1.certificates.record(certificate('02', 'dev-a'), 'test');
    expect((await replica2.recordHeartbeats([byCertificate('dev-a', '01')], ctx))[0]?.ok).toBe(true);

    expect(await replica1.certificates.revokeDevice('dev-a', NOW + 1, 'api:admin')).toBe(2);
    expect((await replica2.recordHeartbeats([byCertificate('dev-a', '01')], ctx))[0]?.ok).toBe(false);
    expect(await replica2.certificates.deviceOf(fingerprintOf('02'))).toBeNull();
    expect(await replica1.certificates.revokeDevice('dev-a', NOW + 2, 'api:admin')).toBe(0);
    const events = await replica2.listEvents({
      after: 0,
      limit: 10,
      typePrefix: 'device.certificates_revoked',
    });
    expect(events).toMatchObject([{ deviceId: 'dev-a', actor: 'api:admin', data: { count: 2 } }]);
  });

  it('refuses to revoke the certificates of an unknown device', async () => {
    await expect(store.certificates.revokeDevice('nobody', NOW, 'test')).rejects.toMatchObject({
      code: 'DEVICE_NOT_FOUND',
    });
  });

  it('lists for the CRL the revoked serials of one issuer only', async () => {
    await store.certificates.record(certificate('01', 'dev-a'), 'test');
    await store.certificates.record(certificate('02', 'dev-b'), 'test');
    await store.certificates.record(certificate('f1', 'dev-b', 'acme-factory'), 'test');
    await store.certificates.revokeDevice('dev-b', NOW + 5, 'test');
    expect(await store.certificates.revoked(FLEETD_ISSUER)).toEqual([{ serial: '02', revokedAt: NOW + 5 }]);
    expect(await store.certificates.revoked('acme-factory')).toEqual([{ serial: 'f1', revokedAt: NOW + 5 }]);
  });

  it('decommissioning revokes the device certificates in the same transaction', async () => {
    await store.certificates.record(certificate('01', 'dev-a'), 'test');
    await store.decommissionDevice('dev-a', { ...ctx, now: NOW + 7 }, 'api:admin');
    expect(await store.certificates.deviceOf(fingerprintOf('01'))).toBeNull();
    expect(await store.certificates.revoked(FLEETD_ISSUER)).toEqual([{ serial: '01', revokedAt: NOW + 7 }]);
    expect((await store.recordHeartbeats([byCertificate('dev-a', '01')], ctx))[0]?.ok).toBe(false);
  });

  it('enrolls a device with a certificate and no credential, and refuses to enroll it twice', async () => {
    const token = { id: 'tok', usesLeft: null, expiresAt: null, tags: {}, createdAt: NOW, claim: 'id=dev-*' };
    await store.createEnrollmentToken(token, hashSecret('tok-secret'), 'test');
    const enrollment = (serial: string) => ({
      tokenHash: hashSecret('tok-secret'),
      device: { id: 'dev-new' },
      credentialHash: null,
      certificate: certificate(serial, 'dev-new'),
    });
    await store.enroll(enrollment('01'), ctx);
    expect(await store.certificates.deviceOf(fingerprintOf('01'))).toBe('dev-new');
    expect(await store.credentialHash('dev-new')).toBeUndefined();
    await expect(store.enroll(enrollment('02'), ctx)).rejects.toMatchObject({ code: 'DEVICE_EXISTS' });
    expect(await store.certificates.deviceOf(fingerprintOf('02'))).toBeNull();
  });

  it('a bearer heartbeat is not proven by a certificate, nor a certificate heartbeat by a credential', async () => {
    await store.setCredential('dev-a', hashSecret('secret-a'), ctx, 'test');
    await store.certificates.record(certificate('01', 'dev-a'), 'test');
    const [bearer, wrongBearer] = await store.recordHeartbeats(
      [
        { heartbeat: { deviceId: 'dev-a' }, credentialHash: hashSecret('secret-a') },
        { heartbeat: { deviceId: 'dev-a' }, credentialHash: fingerprintOf('01') },
      ],
      ctx,
    );
    expect(bearer?.ok).toBe(true);
    expect(wrongBearer?.ok).toBe(false);
  });
});
