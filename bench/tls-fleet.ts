/**
 * The fleet of the TLS benchmark: registered devices, each with a bearer credential and its own client
 * certificate from the FleetD CA in the data folder, made as a device makes it (its own key and a CSR, which
 * the CA checks and signs). The same fleet serves both sides of each comparison.
 */
import { join } from 'node:path';
import type { DeviceRecord } from '../src/core/device.js';
import { loadOrCreateAuthority } from '../src/pki/authority.js';
import { createDeviceCsr } from '../src/pki/csr.js';
import { issueDeviceCertificate } from '../src/pki/device-certificate.js';
import { deviceCredential, hashSecret, splitDeviceCredential } from '../src/registry/credentials.js';
import { insertCertificate } from '../src/store/shared/certificates.js';
import type { SqlStore } from '../src/store/sql-store.js';
import { FLEETD_ISSUER, type NewDeviceCertificate } from '../src/store/store.js';
import { fmtInt, log, seedDevices } from './support.js';

export interface BenchDevice {
  id: string;
  credential: string;
  certificatePem: string;
  privateKeyPem: string;
}

export interface Fleet {
  devices: BenchDevice[];
  /** The FleetD CA (PEM): what the devices trust, and the issuer of their certificates. */
  caPem: string;
}

const VALIDITY_MS = 90 * 86_400_000;

export const fleetDeviceId = (i: number) => `tls-${String(i).padStart(6, '0')}`;

/**
 * Registers `total` devices and gives each a credential and a certificate. The CA is made in `<dataDir>/pki`,
 * where `fleetd server --tls auto` finds it. Store.certificates.record is a transaction and an event per
 * certificate; the certificates (with their events) and credential hashes are written in one transaction
 * instead, through the store's own insert, to keep the set-up short.
 */
export async function seedTlsFleet(store: SqlStore, dataDir: string, total: number): Promise<Fleet> {
  const now = Date.now();
  const record = (i: number): DeviceRecord => ({
    id: fleetDeviceId(i),
    hardwareType: 'pos-x200',
    firmwareVersion: '2.3.0',
    lastSeen: now - 60_000,
  });
  await seedDevices(store, total, record, now);
  const ca = await loadOrCreateAuthority(join(dataDir, 'pki'), new Date(now));
  const devices: BenchDevice[] = [];
  const certificates: NewDeviceCertificate[] = [];
  const started = Date.now();
  for (let i = 0; i < total; i++) {
    const id = fleetDeviceId(i);
    const { csrPem, privateKeyPem } = await createDeviceCsr(id);
    const issued = await issueDeviceCertificate(ca, csrPem, id, {
      now: new Date(now),
      validityMs: VALIDITY_MS,
    });
    devices.push({
      id,
      credential: deviceCredential(id),
      certificatePem: issued.certificatePem,
      privateKeyPem,
    });
    certificates.push({
      serial: issued.serial,
      deviceId: id,
      fingerprint: issued.fingerprint,
      issuer: FLEETD_ISSUER,
      notBefore: issued.notBefore.getTime(),
      notAfter: issued.notAfter.getTime(),
      issuedAt: now,
    });
    if ((i + 1) % 2_000 === 0 || i + 1 === total)
      log(
        `issued ${fmtInt(i + 1)}/${fmtInt(total)} certificates (${((Date.now() - started) / 1000).toFixed(0)} s)`,
      );
  }
  await store.db.transaction().execute(async (trx) => {
    for (const [i, device] of devices.entries()) {
      const hash = hashSecret(splitDeviceCredential(device.credential)!.secret);
      await trx.updateTable('devices').set({ credential_hash: hash }).where('id', '=', device.id).execute();
      await insertCertificate(trx, certificates[i]!, 'bench');
    }
  });
  return { devices, caPem: ca.certificatePem };
}
