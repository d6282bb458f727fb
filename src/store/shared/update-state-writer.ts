/**
 * The one writer of device_updates.state. Every state change, one update or many, goes through here (SQLite's
 * prepared statements in sqlite/updates.ts and sqlite/rollouts.ts take their `state IN (…)` from the same
 * `movableFrom`): a single move is checked against core/update-state.ts and made only from the state it was
 * read in (the first writer wins), a bulk move's `WHERE state IN (…)` is the table's, and each device's move
 * is written with its `update.<state>` event in the caller's transaction. New updates are inserted by their
 * writers (assign, rollout targets, follow-ups) after they have superseded the device's open one here.
 */
import type { UpdateQueryBuilder, UpdateResult } from 'kysely';
import { checkTransition, type MoveRule, movableFrom, type UpdateState } from '../../core/update-state.js';
import type { Database, DeviceUpdatesTable } from '../schema.js';
import type { NewEvent } from '../store.js';
import { updateEvent } from '../update-effects.js';
import { type Db, INSERT_CHUNK, insertEvents } from './events.js';

/** An UPDATE of device_updates, for `moveAll`'s caller to narrow with its WHERE. */
export type UpdateQuery = UpdateQueryBuilder<Database, 'device_updates', 'device_updates', UpdateResult>;

/** An update as its mover read it: which row, whose, and the state it was in. */
export interface UpdateRef {
  id: string;
  device_id: string;
  rollout_id: string | null;
  state: UpdateState;
}

/** The columns a move writes besides `state` and `updated_at`. */
export type MoveColumns = Partial<Omit<DeviceUpdatesTable, 'id' | 'state' | 'updated_at'>>;

/** Who moved it and why, for the update's event. */
export interface MoveCause {
  at: number;
  actor: string | null;
  reason: string | null;
  /** More of the event's data (after `update`, `from`, `to`). */
  extra?: Record<string, unknown>;
  /** Which rule of the table applies (core/update-state.ts): a decommission ends installs too. */
  rule?: MoveRule;
}

/** The event of one update's move. */
export function moveEvent(u: UpdateRef, to: UpdateState, cause: MoveCause): NewEvent {
  return updateEvent(
    { id: u.id, deviceId: u.device_id, rolloutId: u.rollout_id },
    u.state,
    to,
    cause.at,
    cause.actor,
    cause.reason,
    cause.extra,
  );
}

/**
 * Moves one update from the state it was read in to `to`, with its event (none when `event` is false: a
 * progress report says nothing new). False, and nothing written, when another writer moved it first.
 */
export async function moveUpdate(
  trx: Db,
  u: UpdateRef,
  to: UpdateState,
  set: MoveColumns,
  cause: MoveCause,
  event = true,
): Promise<boolean> {
  checkTransition(u.state, to, cause.rule);
  const moved = await trx
    .updateTable('device_updates')
    .set({ ...set, state: to, updated_at: cause.at })
    .where('id', '=', u.id)
    .where('state', '=', u.state)
    .executeTakeFirst();
  if (Number(moved.numUpdatedRows) !== 1) return false;
  if (event) await insertEvents(trx, [moveEvent(u, to, cause)]);
  return true;
}

/**
 * Moves these updates to `to`, each with its event, INSERT_CHUNK to a statement. Each row moves only from the
 * states the table allows (and the events say the state each was read in, under the caller's locks).
 */
export async function moveUpdates(
  trx: Db,
  updates: readonly UpdateRef[],
  to: UpdateState,
  set: MoveColumns,
  cause: MoveCause,
  /** Where the events go when the caller writes them with its own, in order; else they are written here. */
  events?: NewEvent[],
): Promise<void> {
  if (updates.length === 0) return;
  const from = movableFrom(to, [...new Set(updates.map((u) => u.state))], cause.rule);
  for (let i = 0; i < updates.length; i += INSERT_CHUNK) {
    await trx
      .updateTable('device_updates')
      .set({ ...set, state: to, updated_at: cause.at })
      .where(
        'id',
        'in',
        updates.slice(i, i + INSERT_CHUNK).map((u) => u.id),
      )
      .where('state', 'in', from)
      .execute();
  }
  const written = updates.map((u) => moveEvent(u, to, cause));
  if (events) events.push(...written);
  else await insertEvents(trx, written);
}

/**
 * Moves every update `where` selects that is in one of `from` to `to`, in one statement (a rollout's phase
 * start, its end): the caller writes the rollout's event with the count. `from` must all be allowed.
 */
export async function moveAll(
  trx: Db,
  where: (q: UpdateQuery) => UpdateQuery,
  from: readonly UpdateState[],
  to: UpdateState,
  set: MoveColumns,
  at: number,
): Promise<number> {
  const q = trx
    .updateTable('device_updates')
    .set({ ...set, state: to, updated_at: at })
    .where('state', 'in', movableFrom(to, from));
  const result = await where(q).executeTakeFirst();
  return Number(result.numUpdatedRows);
}

/**
 * A device's report written: the columns update-effects.ts decided (checked there with `checkTransition`),
 * only while the update is still in the state the report was checked against.
 */
export async function writeReported(
  trx: Db,
  u: { id: string; state: UpdateState },
  set: Partial<DeviceUpdatesTable>,
): Promise<void> {
  if (set.state !== undefined) checkTransition(u.state, set.state);
  await trx
    .updateTable('device_updates')
    .set(set)
    .where('id', '=', u.id)
    .where('state', '=', u.state)
    .execute();
}
