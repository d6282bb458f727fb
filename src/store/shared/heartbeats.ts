/**
 * Heartbeats in shared SQL: each device's row read (under its lock where rows are locked), the decision made by
 * heartbeat-effects.ts, the row and its events written, the batch in one transaction.
 */
import type { SqlContext } from '../adapter.js';
import { asCallerError } from '../db-errors.js';
import { type HeartbeatRow, heartbeatEffects } from '../heartbeat-effects.js';
import type { HeartbeatOutcome, NewEvent, PresentedHeartbeat, TimeContext } from '../store.js';
import { type Db, INSERT_CHUNK, insertEvents } from './events.js';
import { transact } from './transact.js';
import { OFFERABLE_STATES } from './updates.js';

/** What a heartbeat reads of its device (see heartbeat-effects.ts). */
const HEARTBEAT_COLUMNS = [
  'credential_hash',
  'recorded_status',
  'last_seen',
  'decommissioned_at',
  'firmware_version',
  'admission',
  'heartbeat_interval_ms',
  'offline_after_ms',
  'abandoned_after_ms',
] as const;

/** Names the heartbeats of a failed write: the device when it is one (group commit writes it alone). */
export function heartbeatsNamed(batch: readonly PresentedHeartbeat[]): string {
  return batch.length === 1 ? `the heartbeat of ${batch[0]!.heartbeat.deviceId}` : 'a heartbeat of the batch';
}

export async function recordHeartbeats(
  s: SqlContext,
  batch: PresentedHeartbeat[],
  ctx: TimeContext,
): Promise<HeartbeatOutcome[]> {
  return transact(s.db, async (trx) => {
    // Where transactions run side by side, the batch's rows are read under their locks first.
    const locked = s.adapter.locksRows ? await lockHeartbeatRows(trx, batch) : undefined;
    const certified = await liveCertificates(trx, batch);
    const outcomes: HeartbeatOutcome[] = [];
    const events: NewEvent[] = [];
    for (const presented of batch) {
      const id = presented.heartbeat.deviceId;
      const row = locked
        ? locked.rows.get(id)
        : await trx.selectFrom('devices').select(HEARTBEAT_COLUMNS).where('id', '=', id).executeTakeFirst();
      const open = locked
        ? locked.open.has(id)
        : (await trx
            .selectFrom('device_updates')
            .select('id')
            .where('device_id', '=', id)
            .where('state', 'in', OFFERABLE_STATES)
            .limit(1)
            .executeTakeFirst()) !== undefined;
      const fingerprint = presented.certificateFingerprint;
      const live = fingerprint !== undefined && certified.get(fingerprint) === id;
      const effects = heartbeatEffects(row, presented, open, ctx, live);
      if (effects.outcome.ok) {
        await trx.updateTable('devices').set(effects.set).where('id', '=', id).execute();
        events.push(...effects.events);
        // The same device twice in a batch: the second heartbeat sees the first one's write.
        if (locked && row) locked.rows.set(id, { ...row, ...effects.set } as HeartbeatRow);
      }
      outcomes.push(effects.outcome);
    }
    await insertEvents(trx, events);
    return outcomes;
  }).catch((error: unknown) => {
    throw asCallerError(error, heartbeatsNamed(batch));
  });
}

/** The live (unrevoked) certificates among those the batch presented: fingerprint → device. */
async function liveCertificates(trx: Db, batch: PresentedHeartbeat[]): Promise<Map<string, string>> {
  const live = new Map<string, string>();
  const presented = [
    ...new Set(
      batch.flatMap((b) => (b.certificateFingerprint === undefined ? [] : [b.certificateFingerprint])),
    ),
  ];
  for (let i = 0; i < presented.length; i += INSERT_CHUNK) {
    const found = await trx
      .selectFrom('device_certificates')
      .select(['fingerprint', 'device_id'])
      .where('fingerprint', 'in', presented.slice(i, i + INSERT_CHUNK))
      .where('revoked_at', 'is', null)
      .execute();
    for (const f of found) live.set(f.fingerprint, f.device_id);
  }
  return live;
}

/**
 * Where rows are locked (PostgreSQL): the batch's device rows, read under their locks, taken in id order so batches never deadlock
 * (two heartbeats of one device on two replicas, or a heartbeat and a sweep, would otherwise both read the
 * old status and both record the same transition); and which of them have updates open. Two queries a
 * chunk instead of two a heartbeat: every round trip to a database server counts.
 */
async function lockHeartbeatRows(trx: Db, batch: PresentedHeartbeat[]) {
  const rows = new Map<string, HeartbeatRow>();
  const open = new Set<string>();
  const ids = [...new Set(batch.map((b) => b.heartbeat.deviceId))].sort();
  for (let i = 0; i < ids.length; i += INSERT_CHUNK) {
    const chunk = ids.slice(i, i + INSERT_CHUNK);
    const found = await trx
      .selectFrom('devices')
      .select(['id', ...HEARTBEAT_COLUMNS])
      .where('id', 'in', chunk)
      .orderBy('id')
      .forUpdate()
      .execute();
    for (const { id, ...row } of found) rows.set(id, row);
    const busy = await trx
      .selectFrom('device_updates')
      .select('device_id')
      .distinct()
      .where('device_id', 'in', chunk)
      .where('state', 'in', OFFERABLE_STATES)
      .execute();
    for (const b of busy) open.add(b.device_id);
  }
  return { rows, open };
}
