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
const ISSUE_AT_ONCE = 50;

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
  // Key generation and signing run on libuv's threads: a few devices at a time use every core.
  for (let from = 0; from < total; from += ISSUE_AT_ONCE) {
    const ids = Array.from({ length: Math.min(ISSUE_AT_ONCE, total - from) }, (_, k) =>
      fleetDeviceId(from + k),
    );
    const issued = await Promise.all(
      ids.map(async (id) => {
        const { csrPem, privateKeyPem } = await createDeviceCsr(id);
        const certificate = await issueDeviceCertificate(ca, csrPem, id, {
          now: new Date(now),
          validityMs: VALIDITY_MS,
        });
        return { id, privateKeyPem, certificate };
      }),
    );
    for (const { id, privateKeyPem, certificate } of issued) {
      devices.push({
        id,
        credential: deviceCredential(id),
        certificatePem: certificate.certificatePem,
        privateKeyPem,
      });
      certificates.push({
        serial: certificate.serial,
        deviceId: id,
        fingerprint: certificate.fingerprint,
        issuer: FLEETD_ISSUER,
        notBefore: certificate.notBefore.getTime(),
        notAfter: certificate.notAfter.getTime(),
        issuedAt: now,
      });
    }
    const done = devices.length;
    if (done % 2_000 === 0 || done === total)
      log(
        `issued ${fmtInt(done)}/${fmtInt(total)} certificates (${((Date.now() - started) / 1000).toFixed(0)} s)`,
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
