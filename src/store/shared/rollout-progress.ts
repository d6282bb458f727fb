/**
 * What the engine and the dashboard read of a rollout's progress: counts by phase and state, waiting devices,
 * the ETA's inputs (status history, update durations, finished times) and failures. Reads only.
 */
import { sql } from 'kysely';
import type { SqlContext } from '../adapter.js';
import type { PendingUpdate, PhaseStateCount, StatusHistory, TimeContext, WaitingDevice } from '../store.js';
import { readStatusHistory } from './event-retention.js';
import { silentBefore } from './filter-sql.js';
import { rolloutCounts } from './rollout-counts.js';
import { WAITING_SQL } from './rollout-transitions.js';

export async function counts(s: SqlContext, id: string): Promise<PhaseStateCount[]> {
  return rolloutCounts(s.db, s.adapter, id);
}

export async function waitingOnline(
  s: SqlContext,
  id: string,
  phase: number,
  ctx: TimeContext,
): Promise<number> {
  const row = await s.db
    .selectFrom('device_updates as u')
    .innerJoin('devices as d', 'd.id', 'u.device_id')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('u.rollout_id', '=', id)
    .where('u.phase', '=', phase)
    .where(WAITING_SQL)
    .where('d.last_seen', '>=', silentBefore('offline_after_ms', ctx, 'd'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export async function pendingUpdates(
  s: SqlContext,
  id: string,
  after: string | null,
  limit: number,
): Promise<PendingUpdate[]> {
  let q = s.db
    .selectFrom('device_updates as u')
    .innerJoin('devices as d', 'd.id', 'u.device_id')
    .select(['u.id', 'u.device_id', 'u.phase', 'u.purpose', 'u.not_before', 'd.timezone'])
    .where('u.rollout_id', '=', id)
    .where('u.state', '=', 'pending');
  if (after !== null) q = q.where('u.id', '>', after);
  const rows = await q.orderBy('u.id').limit(limit).execute();
  return rows.map((r) => ({
    id: r.id,
    deviceId: r.device_id,
    phase: Number(r.phase),
    purpose: r.purpose,
    notBefore: r.not_before === null ? null : Number(r.not_before),
    deviceZone: r.timezone,
  }));
}

export async function targetZones(s: SqlContext, id: string): Promise<Array<string | null>> {
  const rows = await s.db
    .selectFrom('device_updates as u')
    .innerJoin('devices as d', 'd.id', 'u.device_id')
    .select('d.timezone')
    .distinct()
    .where('u.rollout_id', '=', id)
    .where('u.purpose', '=', 'update')
    .where('u.state', '!=', 'skipped')
    .execute();
  return rows.map((r) => r.timezone);
}

export async function waitingDevices(
  s: SqlContext,
  id: string,
  limit: number,
): Promise<{ devices: WaitingDevice[]; total: number }> {
  // The states are written out so that the partial index device_updates_waiting answers, and only its
  // entries are read until the sample is chosen.
  const waiting = sql<boolean>`u.state in ('pending', 'scheduled')`;
  const total = await s.db
    .selectFrom('device_updates as u')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('u.rollout_id', '=', id)
    .where(waiting)
    .executeTakeFirstOrThrow();
  // Evenly spaced in the index's order, by phase and then update id (the order the rollout wrote them in,
  // device by device): every phase and every stretch of the fleet is in the sample in its own share, and it
  // is the same sample on every call while nothing moves.
  const step = Math.max(1, Math.floor(Number(total.n) / Math.max(1, limit)));
  const numbered = s.db
    .selectFrom('device_updates as u')
    .select(['u.id', 'u.phase', sql<number>`row_number() over (order by u.phase, u.id)`.as('n')])
    .where('u.rollout_id', '=', id)
    .where(waiting);
  const picked = s.db
    .selectFrom(numbered.as('w'))
    .select(['w.id', 'w.phase'])
    .where(sql<boolean>`(w.n - 1) % ${step} = 0`)
    .orderBy('w.phase')
    .orderBy('w.id')
    .limit(limit);
  const rows = await s.db
    .selectFrom(picked.as('s'))
    .innerJoin('device_updates as u', 'u.id', 's.id')
    .innerJoin('devices as d', 'd.id', 'u.device_id')
    .select(['u.device_id', 'u.phase', 'd.last_seen', 'd.timezone', 'd.hardware_type', 'd.offline_after_ms'])
    .orderBy('u.phase')
    .orderBy('u.id')
    .execute();
  return {
    total: Number(total.n),
    devices: rows.map((r) => ({
      deviceId: r.device_id,
      phase: Number(r.phase),
      lastSeen: r.last_seen === null ? null : Number(r.last_seen),
      timezone: r.timezone,
      hardwareType: r.hardware_type,
      offlineAfterMs: r.offline_after_ms === null ? null : Number(r.offline_after_ms),
    })),
  };
}

export function statusHistory(
  s: SqlContext,
  deviceIds: string[],
  since: number,
): Promise<Map<string, StatusHistory>> {
  return readStatusHistory(s.db, deviceIds, since);
}

export async function updateDurations(s: SqlContext, id: string, limit: number): Promise<number[]> {
  const rows = await s.db
    .selectFrom('device_updates')
    .select(['granted_at', 'finished_at'])
    .where('rollout_id', '=', id)
    .where('granted_at', 'is not', null)
    .where('purpose', '=', 'update')
    .where('state', 'in', ['succeeded', 'failed'])
    .orderBy('granted_at', 'desc')
    .limit(limit)
    .execute();
  return rows.map((r) => Number(r.finished_at) - Number(r.granted_at));
}

export async function failures(
  s: SqlContext,
  id: string,
  limit: number,
): Promise<Array<{ deviceId: string; error: string | null; at: number }>> {
  const rows = await s.db
    .selectFrom('device_updates')
    .select(['device_id', 'error', 'updated_at'])
    .where('rollout_id', '=', id)
    .where('state', 'in', ['failed', 'rolled_back'])
    .orderBy('updated_at', 'desc')
    .orderBy('device_id')
    .limit(limit)
    .execute();
  return rows.map((r) => ({ deviceId: r.device_id, error: r.error, at: Number(r.updated_at) }));
}

export async function finishedSince(s: SqlContext, id: string, since: number): Promise<number[]> {
  const rows = await s.db
    .selectFrom('device_updates')
    .select('finished_at')
    .where('rollout_id', '=', id)
    .where('state', 'in', ['succeeded', 'failed', 'rolled_back'])
    .where('finished_at', '>=', since)
    .execute();
  return rows.map((r) => Number(r.finished_at));
}

export async function hardwareUpdateDurations(
  s: SqlContext,
  hardwareTypes: string[],
  except: string | null,
  limit: number,
): Promise<number[]> {
  if (hardwareTypes.length === 0) return [];
  let q = s.db
    .selectFrom('device_updates as u')
    .innerJoin('devices as d', 'd.id', 'u.device_id')
    .select(['u.granted_at', 'u.finished_at'])
    .where('d.hardware_type', 'in', hardwareTypes)
    .where('u.granted_at', 'is not', null)
    .where('u.finished_at', 'is not', null)
    .where('u.purpose', '=', 'update')
    .where('u.state', 'in', ['succeeded', 'failed']);
  if (except !== null) q = q.where('u.rollout_id', '!=', except);
  const rows = await q.orderBy('u.finished_at', 'desc').limit(limit).execute();
  return rows.map((r) => Number(r.finished_at) - Number(r.granted_at));
}
