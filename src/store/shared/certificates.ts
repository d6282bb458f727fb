/**
 * Device certificates in shared SQL: recording one issued, finding the device of a fingerprint, revoking a
 * device's certificates (an operator's revocation, or decommissioning in its own transaction), and the revoked
 * serials a CRL lists. Heartbeats check certificates inside their own batch write (heartbeats.ts and the native
 * paths), so this module is what every other device request and the CRL read.
 */
import type { Kysely } from 'kysely';
import { FleetError } from '../../core/errors.js';
import type { Database, DeviceCertificatesTable } from '../schema.js';
import type { CertificateStore, DeviceCertificate, NewDeviceCertificate } from '../store.js';
import { type Db, insertEvents } from './events.js';

const toCertificate = (r: DeviceCertificatesTable): DeviceCertificate => ({
  serial: r.serial,
  deviceId: r.device_id,
  fingerprint: r.fingerprint,
  issuer: r.issuer,
  notBefore: Number(r.not_before),
  notAfter: Number(r.not_after),
  issuedAt: Number(r.issued_at),
  revokedAt: r.revoked_at === null ? null : Number(r.revoked_at),
});

/** Writes an issued certificate and its event; the caller has checked that the device may have it. */
export async function insertCertificate(trx: Db, c: NewDeviceCertificate, actor: string): Promise<void> {
  await trx
    .insertInto('device_certificates')
    .values({
      serial: c.serial,
      device_id: c.deviceId,
      fingerprint: c.fingerprint,
      issuer: c.issuer,
      not_before: c.notBefore,
      not_after: c.notAfter,
      issued_at: c.issuedAt,
      revoked_at: null,
    })
    .execute();
  await insertEvents(trx, [
    {
      at: c.issuedAt,
      type: 'device.certificate_issued',
      deviceId: c.deviceId,
      rolloutId: null,
      actor,
      reason: null,
      data: { serial: c.serial, fingerprint: c.fingerprint, issuer: c.issuer, not_after: c.notAfter },
    },
  ]);
}

/** Revokes a device's live certificates with an event (when there were any); returns how many. */
export async function revokeCertificates(
  trx: Db,
  deviceId: string,
  at: number,
  actor: string,
  reason: string,
): Promise<number> {
  const result = await trx
    .updateTable('device_certificates')
    .set({ revoked_at: at })
    .where('device_id', '=', deviceId)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  const count = Number(result.numUpdatedRows);
  if (count > 0) {
    await insertEvents(trx, [
      { at, type: 'device.certificates_revoked', deviceId, rolloutId: null, actor, reason, data: { count } },
    ]);
  }
  return count;
}

/** Whether a device has a certificate that still works: such a device is enrolled even without a credential. */
export async function hasLiveCertificate(trx: Db, deviceId: string): Promise<boolean> {
  const row = await trx
    .selectFrom('device_certificates')
    .select('serial')
    .where('device_id', '=', deviceId)
    .where('revoked_at', 'is', null)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

export class SqlCertificates implements CertificateStore {
  constructor(private readonly db: Kysely<Database>) {}

  record(certificate: NewDeviceCertificate, actor: string): Promise<void> {
    return this.db.transaction().execute(async (trx) => {
      const device = await trx
        .selectFrom('devices')
        .select('decommissioned_at')
        .where('id', '=', certificate.deviceId)
        .executeTakeFirst();
      if (!device) {
        throw new FleetError('DEVICE_NOT_FOUND', `device ${certificate.deviceId} is not registered`);
      }
      if (device.decommissioned_at !== null) {
        throw new FleetError('DEVICE_DECOMMISSIONED', `device ${certificate.deviceId} is decommissioned`);
      }
      await insertCertificate(trx, certificate, actor);
    });
  }

  async deviceOf(fingerprint: string): Promise<string | null> {
    const row = await this.db
      .selectFrom('device_certificates as c')
      .innerJoin('devices as d', 'd.id', 'c.device_id')
      .select('c.device_id')
      .where('c.fingerprint', '=', fingerprint)
      .where('c.revoked_at', 'is', null)
      .where('d.decommissioned_at', 'is', null)
      // A device waiting for approval (say, with a factory certificate) or rejected authenticates as nobody.
      .where('d.admission', '=', 'accepted')
      .executeTakeFirst();
    return row?.device_id ?? null;
  }

  revokeDevice(deviceId: string, at: number, actor: string): Promise<number> {
    return this.db.transaction().execute(async (trx) => {
      const device = await trx
        .selectFrom('devices')
        .select('id')
        .where('id', '=', deviceId)
        .executeTakeFirst();
      if (!device) throw new FleetError('DEVICE_NOT_FOUND', `device ${deviceId} is not registered`);
      return revokeCertificates(trx, deviceId, at, actor, 'revoked by operator');
    });
  }

  async revoked(issuer: string): Promise<Array<{ serial: string; revokedAt: number }>> {
    const rows = await this.db
      .selectFrom('device_certificates')
      .select(['serial', 'revoked_at'])
      .where('issuer', '=', issuer)
      .where('revoked_at', 'is not', null)
      .orderBy('revoked_at')
      .orderBy('serial')
      .execute();
    return rows.map((r) => ({ serial: r.serial, revokedAt: Number(r.revoked_at) }));
  }

  async ofDevice(deviceId: string): Promise<DeviceCertificate[]> {
    const rows = await this.db
      .selectFrom('device_certificates')
      .selectAll()
      .where('device_id', '=', deviceId)
      .orderBy('issued_at', 'desc')
      .orderBy('serial')
      .execute();
    return rows.map(toCertificate);
  }
}
