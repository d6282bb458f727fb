/**
 * Trusted factory CAs in the store, on every backend: trusting (one live CA per name and per certificate),
 * untrusting, the live list every replica polls, and just-in-time registration of a device by its factory
 * certificate: a new device, a pre-registered one claimed, a certificate seen before (live or revoked) left as
 * it is, a device with its own credential or certificate refused, each with its event.
 */
import { beforeEach, expect, it } from 'vitest';
import { DEFAULT_THRESHOLDS } from '../src/core/device.js';
import { hashSecret } from '../src/registry/credentials.js';
import type { SqlStore } from '../src/store/sql-store.js';
import type { FactoryRegistration, NewTrustedCa, TimeContext } from '../src/store/store.js';
import { forEachBackend } from './support/stores.js';

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const ctx: TimeContext = { now: NOW, thresholds: DEFAULT_THRESHOLDS };

const ca = (name: string, fingerprint = `fp-${name}`): NewTrustedCa => ({
  name,
  certificatePem: `-----BEGIN CERTIFICATE-----\n${name}\n-----END CERTIFICATE-----\n`,
  fingerprint,
  tags: { site: 'berlin' },
  hardwareFrom: 'ou',
  approve: false,
  addedAt: NOW,
});

const registration = (deviceId: string, serial: string): FactoryRegistration => ({
  caName: 'acme',
  device: { id: deviceId, hardwareType: 'gw-x1', tags: { site: 'berlin' } },
  certificate: {
    serial,
    deviceId,
    fingerprint: hashSecret(`der-${serial}`),
    issuer: 'acme',
    notBefore: NOW - 60_000,
    notAfter: NOW + 86_400_000,
    issuedAt: NOW,
  },
});

forEachBackend((backend) => {
  let store: SqlStore;
  beforeEach(async () => {
    store = await backend.open();
  });

  it('trusts a CA once per name and per certificate, untrusts it, and trusts it again', async () => {
    await store.trustedCas.add(ca('acme'), 'api:admin');
    await expect(store.trustedCas.add(ca('acme', 'fp-other'), 'api:admin')).rejects.toMatchObject({
      code: 'CONFLICT',
    });
    await expect(store.trustedCas.add(ca('second', 'fp-acme'), 'api:admin')).rejects.toMatchObject({
      code: 'CONFLICT',
      message: expect.stringContaining('as acme'),
    });
    await store.trustedCas.add({ ...ca('beta'), approve: true, hardwareFrom: 'oid:1.2.3' }, 'api:admin');
    expect(await store.trustedCas.list()).toMatchObject([
      { name: 'acme', tags: { site: 'berlin' }, approve: false, removedAt: null },
      { name: 'beta', approve: true, hardwareFrom: 'oid:1.2.3' },
    ]);

    expect(await store.trustedCas.remove('acme', NOW + 1, 'api:admin')).toMatchObject({ removedAt: NOW + 1 });
    await expect(store.trustedCas.remove('acme', NOW + 2, 'api:admin')).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    expect((await store.trustedCas.list()).map((c) => c.name)).toEqual(['beta']);
    await store.trustedCas.add({ ...ca('acme'), addedAt: NOW + 3 }, 'api:admin');
    expect((await store.trustedCas.list()).map((c) => c.name)).toEqual(['beta', 'acme']);

    const events = await store.listEvents({ after: 0, limit: 10, typePrefix: 'ca.' });
    expect(events.map((e) => [e.type, e.data.name])).toEqual([
      ['ca.trusted', 'acme'],
      ['ca.trusted', 'beta'],
      ['ca.untrusted', 'acme'],
      ['ca.trusted', 'acme'],
    ]);
    expect(JSON.stringify(events)).not.toContain('BEGIN CERTIFICATE');
  });

  it('registers a new device by its factory certificate, once', async () => {
    expect(await store.trustedCas.registerDevice(registration('fac-1', 'a1'), ctx)).toBe('fac-1');
    expect(await store.getDevice('fac-1', ctx)).toMatchObject({
      hardwareType: 'gw-x1',
      tags: { site: 'berlin' },
    });
    expect(await store.certificates.deviceOf(hashSecret('der-a1'))).toBe('fac-1');
    expect(await store.certificates.ofDevice('fac-1')).toMatchObject([{ issuer: 'acme' }]);
    // Seen before: nothing changes, whether it is live or revoked.
    expect(await store.trustedCas.registerDevice(registration('fac-1', 'a1'), ctx)).toBeNull();
    await store.certificates.revokeDevice('fac-1', NOW + 1, 'api:admin');
    expect(await store.trustedCas.registerDevice(registration('fac-1', 'a1'), ctx)).toBeNull();
    expect(await store.certificates.deviceOf(hashSecret('der-a1'))).toBeNull();
    const events = await store.listEvents({
      after: 0,
      limit: 10,
      typePrefix: 'device.registered_by_factory_certificate',
    });
    expect(events).toMatchObject([
      { deviceId: 'fac-1', actor: 'ca:acme', data: { ca: 'acme', hardware_type: 'gw-x1' } },
    ]);
  });

  it('claims a pre-registered device without credential, keeping what the registry says', async () => {
    await store.importDevices(
      [{ id: 'pre-1', hardwareType: 'registry-hw', tags: { site: 'paris', ring: 'a' } }],
      ctx,
      'test',
    );
    expect(await store.trustedCas.registerDevice(registration('pre-1', 'b1'), ctx)).toBe('pre-1');
    expect(await store.getDevice('pre-1', ctx)).toMatchObject({
      hardwareType: 'registry-hw',
      tags: { site: 'paris', ring: 'a' },
    });
  });

  it('refuses a device that has a credential or a certificate of its own, or is decommissioned', async () => {
    await store.importDevices([{ id: 'cred-1' }, { id: 'cert-1' }, { id: 'gone-1' }], ctx, 'test');
    await store.setCredential('cred-1', hashSecret('secret'), ctx, 'test');
    await store.trustedCas.registerDevice(registration('cert-1', 'c1'), ctx);
    await store.decommissionDevice('gone-1', ctx, 'test');
    await expect(store.trustedCas.registerDevice(registration('cred-1', 'd1'), ctx)).rejects.toMatchObject({
      code: 'DEVICE_EXISTS',
    });
    await expect(store.trustedCas.registerDevice(registration('cert-1', 'd2'), ctx)).rejects.toMatchObject({
      code: 'DEVICE_EXISTS',
    });
    await expect(store.trustedCas.registerDevice(registration('gone-1', 'd3'), ctx)).rejects.toMatchObject({
      code: 'DEVICE_DECOMMISSIONED',
    });
    expect(await store.certificates.ofDevice('cred-1')).toEqual([]);
    expect(await store.certificates.ofDevice('cert-1')).toHaveLength(1);
  });
});
