/**
 * A new rollout's device updates written in bulk, and the waiting updates elsewhere they supersede, in shared
 * SQL (the RolloutRows of adapter.ts). SQLite's native rows (sqlite/rollouts.ts) write the same rows natively.
 */
import type { Insertable } from 'kysely';
import type { PlannedTarget } from '../../core/rollout/plan.js';
import { OPEN_STATES, type UpdateState } from '../../core/update-state.js';
import type { RolloutRows, SqlContext } from '../adapter.js';
import type { DeviceUpdatesTable } from '../schema.js';
import type { NewEvent, UpdateAction } from '../store.js';
import { newUpdateId } from '../update-ids.js';
import { type Db, INSERT_CHUNK } from './events.js';
import { readPlanDevices } from './plan-query.js';
import { moveEvent, moveUpdates } from './update-state-writer.js';

export const WAITING: UpdateState[] = ['pending', 'scheduled'];
export interface WaitingRow {
  id: string;
  device_id: string;
  rollout_id: string | null;
  state: UpdateState;
}

/** The events of updates waiting elsewhere that a new rollout's assignment supersedes (cancels). */
export function supersededEvents(old: readonly WaitingRow[], rolloutId: string, now: number): NewEvent[] {
  const reason = `superseded by rollout ${rolloutId}`;
  return old.map((o) => moveEvent(o, 'cancelled', { at: now, actor: null, reason }));
}

/**
 * A new rollout's targets in groups by state, then phase, each in the order given (by device): every index
 * of device_updates then takes the new keys at the end of their range. A key in the middle of an index costs
 * a page split that rebalances its neighbours, which measured about a tenth of the whole write.
 */
export function inWriteOrder(targets: PlannedTarget[]): PlannedTarget[][] {
  const groups = new Map<string, Map<number, PlannedTarget[]>>();
  let group: PlannedTarget[] = [];
  let previous: PlannedTarget | undefined;
  for (const t of targets) {
    // Neighbours mostly share their group: it is looked up only when it changes.
    if (t.state !== previous?.state || t.phase !== previous.phase) {
      const phases = groups.get(t.state) ?? new Map<number, PlannedTarget[]>();
      groups.set(t.state, phases);
      group = phases.get(t.phase) ?? [];
      phases.set(t.phase, group);
    }
    group.push(t);
    previous = t;
  }
  return [...groups.keys()].sort().flatMap((state) => {
    const phases = groups.get(state)!;
    return [...phases.keys()].sort((a, b) => a - b).map((phase) => phases.get(phase)!);
  });
}

/** The planned device updates of a new rollout, as rows. */
export function targetRows(
  rollout: { id: string; releaseId: string; action: UpdateAction },
  targets: PlannedTarget[],
  now: number,
): Array<Insertable<DeviceUpdatesTable>> {
  return targets.map((t) => ({
    id: newUpdateId(),
    device_id: t.deviceId,
    release_id: rollout.releaseId,
    rollout_id: rollout.id,
    state: t.state,
    action: rollout.action,
    last_seq: 0,
    progress: null,
    error: t.reason,
    attempts: 0,
    from_version: t.fromVersion,
    created_at: now,
    updated_at: now,
    finished_at: t.state === 'skipped' ? now : null,
    phase: t.phase,
    purpose: 'update',
    not_before: null,
    granted_at: null,
    slot_key: t.slotKey,
  }));
}

/** Writes the new rollout's device updates inside `trx`: multi-row INSERTs of INSERT_CHUNK rows. */
async function insertTargets(
  trx: Db,
  rollout: { id: string; releaseId: string; action: UpdateAction },
  targets: PlannedTarget[],
  now: number,
): Promise<void> {
  const rows = targetRows(rollout, inWriteOrder(targets).flat(), now);
  for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
    await trx
      .insertInto('device_updates')
      .values(rows.slice(i, i + INSERT_CHUNK))
      .execute();
  }
}

/** Updates of these devices from elsewhere (another rollout or none) that have not started. */
async function waitingElsewhere(trx: Db, rolloutId: string, deviceIds: string[]): Promise<WaitingRow[]> {
  const found: WaitingRow[] = [];
  for (let i = 0; i < deviceIds.length; i += INSERT_CHUNK) {
    const rows = await trx
      .selectFrom('device_updates')
      .select(['id', 'device_id', 'rollout_id', 'state'])
      .where('device_id', 'in', deviceIds.slice(i, i + INSERT_CHUNK))
      .where('state', 'in', WAITING)
      .where((eb) => eb.or([eb('rollout_id', 'is', null), eb('rollout_id', '!=', rolloutId)]))
      .execute();
    found.push(...rows);
  }
  return found;
}

/** The open updates of these devices, in this rollout, another or none. */
export async function openUpdatesOf(trx: Db, deviceIds: readonly string[]): Promise<WaitingRow[]> {
  const found: WaitingRow[] = [];
  for (let i = 0; i < deviceIds.length; i += INSERT_CHUNK) {
    const rows = await trx
      .selectFrom('device_updates')
      .select(['id', 'device_id', 'rollout_id', 'state'])
      .where('device_id', 'in', deviceIds.slice(i, i + INSERT_CHUNK))
      .where('state', 'in', [...OPEN_STATES])
      .execute();
    found.push(...rows);
  }
  return found;
}

/** Open updates of these devices from elsewhere that have not started are cancelled: the newest wins. */
async function supersede(trx: Db, rolloutId: string, deviceIds: string[], now: number): Promise<void> {
  const old = await waitingElsewhere(trx, rolloutId, deviceIds);
  const reason = `superseded by rollout ${rolloutId}`;
  await moveUpdates(
    trx,
    old,
    'cancelled',
    { error: reason, finished_at: now },
    { at: now, actor: null, reason },
  );
}

/** The shared RolloutRows: the plan read and the bulk writes above, over Kysely. */
export function sharedRolloutRows(s: SqlContext): RolloutRows {
  return {
    readPlanDevices: (trx, selection, ctx) => readPlanDevices(s, trx, selection, ctx),
    planDevices: async (selection, ctx) => (await readPlanDevices(s, s.db, selection, ctx)).devices,
    insertTargets,
    supersede,
  };
}
