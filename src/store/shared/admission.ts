/**
 * The approval queue in shared SQL: a device asking to join without an enrollment token is recorded as pending
 * with the fingerprint of what it proved itself with; an operator accepts or rejects it; its next request with
 * the same proof completes the enrollment. Pre-authorised (imported) ids complete at their first request.
 */
import { timingSafeEqual } from 'node:crypto';
import { ADMISSION_MOVES, type AdmissionDecision, type DeviceAdmission } from '../../core/admission.js';
import { FleetError } from '../../core/errors.js';
import type { FilterNode } from '../../core/filter/index.js';
import type { SqlContext } from '../adapter.js';
import { isUniqueViolation } from '../db-errors.js';
import { type DeviceRow, newDeviceRow, rowToDevice } from '../device-row.js';
import type {
  AdmissionOutcome,
  AdmissionRequest,
  AdmissionResult,
  AdmissionStore,
  NewEvent,
  QueuedDevice,
  TimeContext,
} from '../store.js';
import { hasLiveCertificate, insertCertificate } from './certificates.js';
import { selectedDeviceIds } from './device-selection.js';
import { replaceTags } from './devices.js';
import { type Db, INSERT_CHUNK, insertEvents } from './events.js';

/** At most this many devices move in one decision by filter: the queue is reviewed, not the whole fleet. */
export const MAX_DECISION = 10_000;

const event = (
  type: string,
  deviceId: string,
  at: number,
  actor: string,
  reason: string | null,
  data: Record<string, unknown> = {},
): NewEvent => ({ at, type, deviceId, rolloutId: null, actor, reason, data });

/** The key is the hash of a device's own secret (or its CSR key's fingerprint): compared in constant time. */
function sameKey(row: DeviceRow, key: string): boolean {
  if (row.admission_key === null) return false;
  const stored = Buffer.from(row.admission_key);
  const given = Buffer.from(key);
  return stored.length === given.length && timingSafeEqual(stored, given);
}

export class SqlAdmission implements AdmissionStore {
  constructor(private readonly s: SqlContext) {}

  request(req: AdmissionRequest, ctx: TimeContext): Promise<AdmissionOutcome> {
    const id = req.device.id;
    const actor = req.actor ?? `device:${id}`;
    return this.s.db
      .transaction()
      .execute(async (trx): Promise<AdmissionOutcome> => {
        const row = await trx.selectFrom('devices').selectAll().where('id', '=', id).executeTakeFirst();
        if (!row) return this.recordPending(trx, req, actor, ctx);
        if (row.decommissioned_at !== null) {
          throw new FleetError('DEVICE_DECOMMISSIONED', `device ${id} is decommissioned`);
        }
        if (row.admission_key !== null && !sameKey(row, req.keyFingerprint)) {
          // Whoever knows a waiting device's id must not take its place: only its own key (or secret) continues.
          throw new FleetError(
            'ADMISSION_KEY_MISMATCH',
            `device ${id} asked to join with another key; only the requester that asked first can continue`,
          );
        }
        if (row.admission === 'rejected') {
          throw new FleetError('ENROLLMENT_REJECTED', `device ${id} was rejected by an operator`);
        }
        if (row.admission === 'pending') {
          return { admission: 'pending', device: rowToDevice(row, ctx), firstRequest: false };
        }
        const enrolled = row.credential_hash !== null || (await hasLiveCertificate(trx, id));
        if (enrolled || (row.admission_key === null && row.preauthorized === 0)) {
          throw new FleetError(
            'DEVICE_EXISTS',
            `device ${id} is already registered; it joins with an enrollment token that may claim it, ` +
              'or once an operator pre-authorises it (`preauthorized: true` in the import file)',
          );
        }
        return this.complete(trx, row, req, actor, ctx);
      })
      .catch((error: unknown) => {
        // Two first requests for the same new id: the second finds the first's row taken.
        if (isUniqueViolation(error)) {
          throw new FleetError(
            'ADMISSION_KEY_MISMATCH',
            `device ${id} asked to join at the same moment from another requester`,
            undefined,
            { cause: error },
          );
        }
        throw error;
      });
  }

  private async recordPending(
    trx: Db,
    req: AdmissionRequest,
    actor: string,
    ctx: TimeContext,
  ): Promise<AdmissionOutcome> {
    const record = req.device;
    const row: DeviceRow = {
      ...newDeviceRow(record, ctx),
      admission: 'pending',
      admission_key: req.keyFingerprint,
    };
    await trx.insertInto('devices').values(row).execute();
    if (record.tags) await replaceTags(trx, [record.id], new Map([[record.id, record.tags]]));
    await insertEvents(trx, [
      event('device.admission_requested', record.id, ctx.now, actor, 'asked to join without a token', {
        key_fingerprint: req.keyFingerprint,
        method: req.certificate ? 'certificate' : 'credential',
      }),
    ]);
    return { admission: 'pending', device: rowToDevice(row, ctx), firstRequest: true };
  }

  /** An accepted (or pre-authorised) requester's enrollment: its credential or certificate is written now. */
  private async complete(
    trx: Db,
    row: DeviceRow,
    req: AdmissionRequest,
    actor: string,
    ctx: TimeContext,
  ): Promise<AdmissionOutcome> {
    const set = {
      admission_key: req.keyFingerprint,
      credential_hash: req.credentialHash,
      updated_at: ctx.now,
    };
    await trx.updateTable('devices').set(set).where('id', '=', row.id).execute();
    if (req.certificate) await insertCertificate(trx, req.certificate, actor);
    const reason = row.admission_key === null ? 'pre-authorised' : 'accepted from the approval queue';
    await insertEvents(trx, [event('device.enrolled', row.id, ctx.now, actor, reason)]);
    return { admission: 'accepted', device: rowToDevice({ ...row, ...set }, ctx) };
  }

  decide(
    decision: AdmissionDecision,
    selection: { ids: string[] } | { filter: FilterNode },
    ctx: TimeContext,
    actor: string,
  ): Promise<AdmissionResult[]> {
    const move = ADMISSION_MOVES[decision];
    return this.s.db.transaction().execute(async (trx) => {
      const ids = await selectedDeviceIds(trx, selection, ctx, MAX_DECISION, (q) =>
        q.where('admission', 'in', move.from),
      );
      const results: AdmissionResult[] = [];
      const movable: string[] = [];
      const found = new Map<string, { admission: DeviceAdmission; decommissioned_at: number | null }>();
      for (let i = 0; i < ids.length; i += INSERT_CHUNK) {
        const rows = await trx
          .selectFrom('devices')
          .select(['id', 'admission', 'decommissioned_at'])
          .where('id', 'in', ids.slice(i, i + INSERT_CHUNK))
          .execute();
        for (const r of rows) found.set(r.id, r);
      }
      for (const id of ids) {
        const row = found.get(id);
        const refuse = (
          code: 'DEVICE_NOT_FOUND' | 'DEVICE_DECOMMISSIONED' | 'TRANSITION_NOT_ALLOWED',
          m: string,
        ) => results.push({ id, ok: false, error: { code, message: m } });
        if (!row) refuse('DEVICE_NOT_FOUND', `device ${id} does not exist`);
        else if (row.decommissioned_at !== null)
          refuse('DEVICE_DECOMMISSIONED', `device ${id} is decommissioned`);
        else if (!move.from.includes(row.admission)) {
          refuse(
            'TRANSITION_NOT_ALLOWED',
            `device ${id} is ${row.admission}; ${decision} applies to ${move.from.join(' or ')} devices`,
          );
        } else {
          movable.push(id);
          results.push({ id, ok: true, admission: move.to });
        }
      }
      for (let i = 0; i < movable.length; i += INSERT_CHUNK) {
        await trx
          .updateTable('devices')
          .set({ admission: move.to, updated_at: ctx.now })
          .where('id', 'in', movable.slice(i, i + INSERT_CHUNK))
          .where('admission', 'in', move.from)
          .execute();
      }
      await insertEvents(
        trx,
        movable.map((id) => event(move.event, id, ctx.now, actor, null, { from: found.get(id)!.admission })),
      );
      return results;
    });
  }

  async waiting(
    limit: number,
    ctx: TimeContext,
    admission: Exclude<DeviceAdmission, 'accepted'> = 'pending',
  ): Promise<QueuedDevice[]> {
    const rows = await this.s.db
      .selectFrom('devices')
      .selectAll()
      .where('admission', '=', admission)
      .where('decommissioned_at', 'is', null)
      .orderBy('created_at')
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map((r) => ({
      device: rowToDevice(r, ctx),
      keyFingerprint: r.admission_key,
      requestedAt: Number(r.created_at),
    }));
  }

  /**
   * Marks imported ids as pre-authorised: an accepted device without credentials joins at its first tokenless
   * request, and one already waiting is accepted at once (its requester completes on its next request).
   */
  async preauthorize(ids: ReadonlySet<string>, ctx: TimeContext, actor: string): Promise<void> {
    if (ids.size === 0) return;
    const list = [...ids];
    await this.s.db.transaction().execute(async (trx) => {
      for (let i = 0; i < list.length; i += INSERT_CHUNK) {
        const chunk = list.slice(i, i + INSERT_CHUNK);
        const waiting = await trx
          .selectFrom('devices')
          .select('id')
          .where('id', 'in', chunk)
          .where('admission', '=', 'pending')
          .execute();
        await trx
          .updateTable('devices')
          .set({ preauthorized: 1, admission: 'accepted' })
          .where('id', 'in', chunk)
          .where('admission', '!=', 'rejected')
          .where('decommissioned_at', 'is', null)
          .execute();
        await insertEvents(
          trx,
          waiting.map((r) =>
            event('device.accepted', r.id, ctx.now, actor, 'pre-authorised by import', { from: 'pending' }),
          ),
        );
      }
    });
  }
}
