/**
 * A new rollout's rows on PostgreSQL: the device updates inserted from unnest arrays, 50,000 a statement, and
 * the updates they supersede found with `device_id = ANY($1)`, 50,000 devices a statement. The shared code
 * sends 500 rows a statement (a bound-parameter limit PostgreSQL's arrays do not have): for 100,000 devices,
 * 400 statements that took 11 of the create's 12.5 s. The plan read is the shared one; the rows are the same
 * (shared/rollout-targets.ts makes them), only how they travel differs.
 */
import { sql } from 'kysely';
import type { PlannedTarget } from '../../core/rollout/plan.js';
import { movableFrom } from '../../core/update-state.js';
import type { RolloutRows, SqlContext } from '../adapter.js';
import { type Db, insertEvents } from '../shared/events.js';
import {
  inWriteOrder,
  sharedRolloutRows,
  supersededEvents,
  targetRows,
  WAITING,
  type WaitingRow,
} from '../shared/rollout-targets.js';
import type { UpdateAction } from '../store.js';

const CHUNK = 50_000;

async function insertTargets(
  trx: Db,
  rollout: { id: string; releaseId: string; action: UpdateAction },
  targets: PlannedTarget[],
  now: number,
): Promise<void> {
  const rows = targetRows(rollout, inWriteOrder(targets).flat(), now);
  for (let i = 0; i < rows.length; i += CHUNK) {
    const chunk = rows.slice(i, i + CHUNK);
    const column = <K extends keyof (typeof chunk)[number]>(k: K) => chunk.map((r) => r[k] ?? null);
    await sql`INSERT INTO device_updates (id, device_id, release_id, rollout_id, state, action, last_seq, progress,
        error, attempts, from_version, created_at, updated_at, finished_at, phase, purpose, not_before, granted_at,
        slot_key)
      SELECT t.id, t.device_id, ${rollout.releaseId}, ${rollout.id}, t.state, ${rollout.action}, 0, NULL, t.error, 0,
        t.from_version, ${now}::bigint, ${now}::bigint, t.finished_at, t.phase, 'update', NULL, NULL, t.slot_key
      FROM unnest(${column('id')}::text[], ${column('device_id')}::text[], ${column('state')}::text[],
        ${column('error')}::text[], ${column('from_version')}::text[], ${column('finished_at')}::bigint[],
        ${column('phase')}::int[], ${column('slot_key')}::text[])
        WITH ORDINALITY AS t(id, device_id, state, error, from_version, finished_at, phase, slot_key, n)
      ORDER BY t.n`.execute(trx);
  }
}

async function supersede(trx: Db, rolloutId: string, deviceIds: string[], now: number): Promise<void> {
  const old: WaitingRow[] = [];
  for (let i = 0; i < deviceIds.length; i += CHUNK) {
    const found = await sql<WaitingRow>`SELECT id, device_id, rollout_id, state FROM device_updates
      WHERE device_id = ANY(${deviceIds.slice(i, i + CHUNK)}::text[]) AND state = ANY(${WAITING}::text[])
        AND (rollout_id IS NULL OR rollout_id <> ${rolloutId})`.execute(trx);
    old.push(...found.rows);
  }
  if (old.length === 0) return;
  // The move of shared/update-state-writer.ts's moveUpdates, its from-states from the same table.
  await sql`UPDATE device_updates SET state = 'cancelled', error = ${`superseded by rollout ${rolloutId}`},
      updated_at = ${now}::bigint, finished_at = ${now}::bigint
    WHERE id = ANY(${old.map((o) => o.id)}::text[]) AND state = ANY(${movableFrom('cancelled', WAITING)}::text[])`.execute(
    trx,
  );
  await insertEvents(trx, supersededEvents(old, rolloutId, now));
}

export function postgresRolloutRows(s: SqlContext): RolloutRows {
  const shared = sharedRolloutRows(s);
  return {
    readPlanDevices: shared.readPlanDevices,
    planDevices: shared.planDevices,
    insertTargets,
    supersede,
  };
}
