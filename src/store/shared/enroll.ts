/** Enrollment: a device registers itself (or claims its pre-registered entry) with an enrollment token. */
import type { Device, DeviceRecord } from '../../core/device.js';
import { FleetError } from '../../core/errors.js';
import { matchesFilter, parseFilter } from '../../core/filter/index.js';
import type { SqlContext } from '../adapter.js';
import { isUniqueViolation } from '../db-errors.js';
import { type DeviceRow, newDeviceRow, recordColumns, rowToDevice } from '../device-row.js';
import type { Enrollment, TimeContext } from '../store.js';
import { hasLiveCertificate, insertCertificate } from './certificates.js';
import { replaceTags } from './devices.js';
import { insertEvents } from './events.js';

export async function enroll(s: SqlContext, enrollment: Enrollment, ctx: TimeContext): Promise<Device> {
  return s.db.transaction().execute(async (trx) => {
    const token = await trx
      .selectFrom('enrollment_tokens')
      .selectAll()
      .where('token_hash', '=', enrollment.tokenHash)
      .executeTakeFirst();
    const usable =
      token &&
      token.revoked_at === null &&
      (token.expires_at === null || Number(token.expires_at) > ctx.now) &&
      (token.uses_left === null || token.uses_left > 0);
    if (!token || !usable) {
      throw new FleetError(
        'ENROLLMENT_INVALID',
        'the enrollment token is unknown, expired, revoked or used up',
      );
    }
    const record = enrollment.device;
    const existing = await trx
      .selectFrom('devices')
      .selectAll()
      .where('id', '=', record.id)
      .executeTakeFirst();
    const tokenTags = JSON.parse(token.tags) as Record<string, string>;
    let row: DeviceRow;
    if (existing) {
      if (existing.decommissioned_at !== null) {
        throw new FleetError('DEVICE_DECOMMISSIONED', `device ${record.id} is decommissioned`);
      }
      // The approval queue holds this id for the requester that asked first (shared/admission.ts).
      if (existing.admission !== 'accepted') {
        throw new FleetError(
          'DEVICE_EXISTS',
          `device ${record.id} is ${existing.admission === 'pending' ? 'waiting for approval' : 'rejected'}; ` +
            'an operator decides with `fleetd devices accept` or `reject`',
        );
      }
      if (existing.credential_hash !== null || (await hasLiveCertificate(trx, record.id))) {
        throw new FleetError(
          'DEVICE_EXISTS',
          `device ${record.id} is already enrolled; an operator can issue it a new credential`,
        );
      }
      // Whoever holds a token must not take over any pre-registered device: only those its filter names.
      const claim = token.claim_filter === null ? null : parseFilter(token.claim_filter);
      if (claim === null || !matchesFilter(claim, rowToDevice(existing, ctx), ctx)) {
        throw new FleetError(
          'DEVICE_EXISTS',
          `device ${record.id} is pre-registered and this enrollment token may not claim it; ` +
            'an operator can issue it a credential (`fleetd devices credential`) or create a token with --claim',
        );
      }
      // A pre-registered (imported) device claims its registry entry; registry facts win over the device's.
      const fill: DeviceRecord = { id: record.id };
      if (existing.hardware_type === null) fill.hardwareType = record.hardwareType ?? null;
      if (existing.firmware_version === null) fill.firmwareVersion = record.firmwareVersion ?? null;
      row = {
        ...existing,
        ...recordColumns(fill),
        credential_hash: enrollment.credentialHash,
        updated_at: ctx.now,
      };
      await trx.updateTable('devices').set(row).where('id', '=', record.id).execute();
    } else {
      const tags = { ...tokenTags, ...(record.tags ?? {}) };
      row = { ...newDeviceRow({ ...record, tags }, ctx), credential_hash: enrollment.credentialHash };
      await trx
        .insertInto('devices')
        .values(row)
        .execute()
        .catch((error: unknown) => {
          // Another enrollment of the same new id committed first.
          if (isUniqueViolation(error)) {
            throw new FleetError('DEVICE_EXISTS', `device ${record.id} is already enrolled`, undefined, {
              cause: error,
            });
          }
          throw error;
        });
      await replaceTags(trx, [record.id], new Map([[record.id, tags]]));
    }
    if (token.uses_left !== null) {
      // Decrement in the database, guarded: under PostgreSQL's READ COMMITTED two enrollments may both
      // have read the last use; the second one's UPDATE sees the first one's and matches no row.
      const used = await trx
        .updateTable('enrollment_tokens')
        .set((eb) => ({ uses_left: eb('uses_left', '-', 1) }))
        .where('id', '=', token.id)
        .where('uses_left', '>', 0)
        .executeTakeFirst();
      if (used.numUpdatedRows === 0n) {
        throw new FleetError(
          'ENROLLMENT_INVALID',
          'the enrollment token is unknown, expired, revoked or used up',
        );
      }
    }
    const actor = `enrollment:${token.id}`;
    if (enrollment.certificate) await insertCertificate(trx, enrollment.certificate, actor);
    await insertEvents(trx, [
      {
        at: ctx.now,
        type: 'device.enrolled',
        deviceId: record.id,
        rolloutId: null,
        actor,
        reason: existing ? 'claimed a registered device' : 'self-registration',
        data: {},
      },
    ]);
    return rowToDevice(row, ctx);
  });
}
