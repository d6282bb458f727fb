/**
 * A rollout's device updates moved in bulk: phase starts, time-outs, retries, ending the waiting ones, and the
 * follow-ups blue-green switches and rollbacks add. Bulk moves write one rollout event with their count; a
 * device's own transition writes its own event. Each runs inside the caller's transaction, or takes the
 * rollout's lock in its own.
 */
import { type ExpressionBuilder, type Selectable, sql } from 'kysely';
import { afterFailure, type RetryPolicy, TIMED_OUT_REASON } from '../../core/rollout/dispatch.js';
import type { UpdatePurpose } from '../../core/rollout/offer.js';
import { ACTIVE_STATES, OPEN_STATES, type UpdateState } from '../../core/update-state.js';
import type { SqlContext } from '../adapter.js';
import type { Database, DeviceUpdatesTable, RolloutsTable } from '../schema.js';
import type { DecisionContext, NewEvent, RollbackUnavailable, TimeContext } from '../store.js';
import { newUpdateId } from '../update-ids.js';
import { type Db, INSERT_CHUNK, insertEvents } from './events.js';
import { lockRollout } from './leases.js';
import { openUpdatesOf, WAITING } from './rollout-targets.js';
import { transact } from './transact.js';
import { type MoveColumns, moveAll, moveUpdate, moveUpdates } from './update-state-writer.js';

const ACTIVE = [...ACTIVE_STATES];

/** A rollout's own event (not one device's). */
export const rolloutEvent = (
  id: string,
  type: string,
  at: number,
  reason: string,
  data: Record<string, unknown>,
  actor: string | null = null,
): NewEvent => ({ at, type, deviceId: null, rolloutId: id, actor, reason, data });

/** Downloading can still be called off; installing and verifying are left to finish (or roll back). */
const CANCELLABLE_STARTED: UpdateState[] = ['notified', 'downloading'];

/** `u`'s device has no update of this purpose in the rollout yet: a follow-up is added once per device. */
function withoutFollowUp(rolloutId: string, purpose: Exclude<UpdatePurpose, 'update'>) {
  return ({ not, exists, selectFrom }: ExpressionBuilder<Database & { u: DeviceUpdatesTable }, 'u'>) =>
    not(
      exists(
        selectFrom('device_updates as f')
          .select('f.id')
          .whereRef('f.device_id', '=', 'u.device_id')
          .where('f.rollout_id', '=', rolloutId)
          .where('f.purpose', '=', purpose),
      ),
    );
}
/**
 * The waiting states written out in the SQL text, as the partial index device_updates_waiting is defined:
 * only a query that says so in the same words may use it (a bound parameter could be anything).
 */
export const WAITING_SQL = sql<boolean>`state in ('pending', 'scheduled')`;

/** Scheduled updates of phases up to `phase` become pending (offered from now on). */
export async function releasePhaseIn(db: Db, id: string, phase: number, ctx: TimeContext): Promise<number> {
  return moveAll(
    db,
    (q) => q.where('rollout_id', '=', id).where(WAITING_SQL).where('phase', '<=', phase),
    ['scheduled'],
    'pending',
    {},
    ctx.now,
  );
}

/** Moves each selected row and writes one event per device, in one transaction. */
async function moveEach(
  s: SqlContext,
  id: string,
  select: (
    trx: Db,
  ) => Promise<Array<{ id: string; device_id: string; state: UpdateState; attempts: number }>>,
  decide: (row: {
    state: UpdateState;
    attempts: number;
  }) => { to: UpdateState; reason: string; set: MoveColumns } | null,
  ctx: DecisionContext,
  actor: string | null = null,
): Promise<number> {
  return transact(s.db, async (trx) => {
    await lockRollout(trx, s.adapter, id, ctx);
    const rows = await select(trx);
    let moved = 0;
    for (const row of rows) {
      const d = decide(row);
      if (!d) continue;
      const u = { id: row.id, device_id: row.device_id, rollout_id: id, state: row.state };
      if (await moveUpdate(trx, u, d.to, d.set, { at: ctx.now, actor, reason: d.reason })) moved++;
    }
    return moved;
  });
}

export async function timeOut(
  s: SqlContext,
  id: string,
  grantedBefore: number,
  ctx: DecisionContext,
): Promise<number> {
  return moveEach(
    s,
    id,
    (trx) =>
      trx
        .selectFrom('device_updates')
        .select(['id', 'device_id', 'state', 'attempts'])
        .where('rollout_id', '=', id)
        .where('state', 'in', ACTIVE)
        .where('granted_at', '<=', grantedBefore)
        .execute(),
    (row) => ({
      to: 'failed',
      reason: TIMED_OUT_REASON,
      set: { error: TIMED_OUT_REASON, finished_at: ctx.now, attempts: Number(row.attempts) + 1 },
    }),
    ctx,
  );
}

export async function retryFailed(
  s: SqlContext,
  id: string,
  policy: RetryPolicy,
  ctx: DecisionContext,
): Promise<number> {
  return moveEach(
    s,
    id,
    (trx) =>
      trx
        .selectFrom('device_updates')
        .select(['id', 'device_id', 'state', 'attempts', 'finished_at'])
        .where('rollout_id', '=', id)
        .where('state', '=', 'failed')
        .where('purpose', '=', 'update')
        .where('attempts', '<', policy.attempts)
        // A device holds one open update: one given another since it failed (newer than this retry's
        // reason) keeps it, and the retry waits until that one ends.
        .where(({ not, exists, selectFrom }) =>
          not(
            exists(
              selectFrom('device_updates as other')
                .select('other.id')
                .whereRef('other.device_id', '=', 'device_updates.device_id')
                .where('other.state', 'in', [...OPEN_STATES]),
            ),
          ),
        )
        .execute(),
    (row) => {
      const next = afterFailure(Number(row.attempts), ctx.now, policy);
      if (next.kind === 'give_up') return null;
      return {
        to: 'pending',
        reason: `retry ${Number(row.attempts) + 1} of ${policy.attempts} after ${Math.round((next.at - ctx.now) / 1000)} s`,
        set: { not_before: next.at, finished_at: null, granted_at: null },
      };
    },
    ctx,
  );
}

export async function endWaitingIn(
  trx: Db,
  id: string,
  to: 'skipped' | 'cancelled',
  reason: string,
  alsoStarted: boolean,
  ctx: TimeContext,
  actor: string | null,
): Promise<number> {
  const states = alsoStarted ? [...WAITING, ...CANCELLABLE_STARTED] : WAITING;
  const started = alsoStarted
    ? await trx
        .selectFrom('device_updates')
        .select(['id', 'device_id', 'state'])
        .where('rollout_id', '=', id)
        .where('state', 'in', CANCELLABLE_STARTED)
        .execute()
    : [];
  const n = await moveAll(
    trx,
    (q) => q.where('rollout_id', '=', id),
    states,
    to,
    { error: reason, finished_at: ctx.now },
    ctx.now,
  );
  // Devices at work are told one by one (their next report is answered `cancelled`); the rest in one event.
  await insertEvents(trx, [
    ...started.map((s) => ({
      at: ctx.now,
      type: 'update.cancelled',
      deviceId: s.device_id,
      rolloutId: id,
      actor,
      reason,
      data: { update: s.id, from: s.state, to: 'cancelled' },
    })),
    rolloutEvent(id, `rollout.updates_${to}`, ctx.now, reason, { count: n - started.length }, actor),
  ]);
  return n;
}

/**
 * A device holds one open update: before a follow-up is written, what its device waits for (here or
 * elsewhere) is superseded; a device at work on another update is left out of `values` (a switch is added at a
 * later tick, a rollback is reported in a rollout event).
 */
async function supersedeForFollowUps(
  trx: Db,
  id: string,
  purpose: Exclude<UpdatePurpose, 'update'>,
  values: Array<{ device_id: string }>,
  ctx: TimeContext,
  actor: string | null,
): Promise<void> {
  const open = await openUpdatesOf(
    trx,
    values.map((v) => v.device_id),
  );
  const busy = new Set(open.filter((o) => !WAITING.includes(o.state)).map((o) => o.device_id));
  const old = open.filter((o) => !busy.has(o.device_id));
  const reason = `superseded by a ${purpose} of rollout ${id}`;
  const events: NewEvent[] = [];
  const cause = { at: ctx.now, actor, reason };
  await moveUpdates(trx, old, 'cancelled', { error: reason, finished_at: ctx.now }, cause, events);
  if (busy.size > 0 && purpose === 'rollback') {
    events.push(
      rolloutEvent(
        id,
        'rollout.rollback_busy',
        ctx.now,
        `${busy.size} devices are at work on another update and are not rolled back`,
        { devices: [...busy].slice(0, 100) },
        actor,
      ),
    );
  }
  await insertEvents(trx, events);
  for (let i = values.length - 1; i >= 0; i--) if (busy.has(values[i]!.device_id)) values.splice(i, 1);
}

async function addFollowUps(
  trx: Db,
  id: string,
  purpose: Exclude<UpdatePurpose, 'update'>,
  rows: Array<{
    device_id: string;
    release_id: string;
    from_version: string | null;
    slot_key: string | null;
  }>,
  phase: number,
  ctx: TimeContext,
  actor: string | null,
  reason: string,
): Promise<number> {
  const values = rows.map((r) => ({
    id: newUpdateId(),
    device_id: r.device_id,
    release_id: r.release_id,
    rollout_id: id,
    state: 'pending' as const,
    // A rollback installs the previous release: a device whose other slot still holds it just switches back.
    action: purpose === 'switch' ? ('switch' as const) : ('install' as const),
    last_seq: 0,
    progress: null,
    error: null,
    attempts: 0,
    from_version: r.from_version,
    created_at: ctx.now,
    updated_at: ctx.now,
    finished_at: null,
    phase,
    purpose,
    not_before: null,
    granted_at: null,
    slot_key: r.slot_key,
  }));
  await supersedeForFollowUps(trx, id, purpose, values, ctx, actor);
  for (let i = 0; i < values.length; i += INSERT_CHUNK) {
    await trx
      .insertInto('device_updates')
      .values(values.slice(i, i + INSERT_CHUNK))
      .execute();
  }
  await insertEvents(
    trx,
    values.map((v) => ({
      at: ctx.now,
      type: 'update.pending',
      deviceId: v.device_id,
      rolloutId: id,
      actor,
      reason,
      data: { update: v.id, to: 'pending', purpose },
    })),
  );
  return values.length;
}

export async function addSwitches(s: SqlContext, id: string, ctx: DecisionContext): Promise<number> {
  return transact(s.db, async (trx) => {
    await lockRollout(trx, s.adapter, id, ctx);
    const staged = await trx
      .selectFrom('device_updates as u')
      .select(['u.device_id', 'u.release_id', 'u.from_version', 'u.slot_key'])
      .where('u.rollout_id', '=', id)
      .where('u.purpose', '=', 'update')
      .where('u.state', '=', 'succeeded')
      .where(withoutFollowUp(id, 'switch'))
      .execute();
    return addFollowUps(trx, id, 'switch', staged, 1, ctx, null, 'blue-green switch to the staged slot');
  });
}

/**
 * Devices this rollout changed (an install that succeeded, or a blue-green switch) that have no rollback yet,
 * with the stored release of the version each ran before (null: none is in the store).
 */
function changedWithoutRollback(db: Db, id: string, releaseName: string) {
  return db
    .selectFrom('device_updates as u')
    .leftJoin('releases as prev', (join) =>
      join
        .onRef('prev.version', '=', 'u.from_version')
        .on('prev.name', '=', releaseName)
        .on('prev.deleted_at', 'is', null),
    )
    .select(['u.device_id', 'u.from_version', 'u.slot_key', 'prev.id as previous_release'])
    .where('u.rollout_id', '=', id)
    .where('u.state', '=', 'succeeded')
    .where((eb) =>
      eb.or([
        eb('u.purpose', '=', 'switch'),
        eb.and([eb('u.purpose', '=', 'update'), eb('u.action', '!=', 'download_only')]),
      ]),
    )
    .where(withoutFollowUp(id, 'rollback'))
    .orderBy('u.device_id');
}

async function releaseNameOf(db: Db, releaseId: string): Promise<string> {
  const release = await db
    .selectFrom('releases')
    .select('name')
    .where('id', '=', releaseId)
    .executeTakeFirstOrThrow();
  return release.name;
}

export async function addRollbacksIn(
  trx: Db,
  rollout: Selectable<RolloutsTable>,
  ctx: TimeContext,
  actor: string,
): Promise<{ queued: number; unavailable: number }> {
  const id = rollout.id;
  const name = await releaseNameOf(trx, rollout.release_id);
  const changed = await changedWithoutRollback(trx, id, name).execute();
  const back = changed.filter((c) => c.previous_release !== null);
  const queued = await addFollowUps(
    trx,
    id,
    'rollback',
    back.map((c) => ({
      device_id: c.device_id,
      release_id: c.previous_release!,
      from_version: null,
      slot_key: c.slot_key,
    })),
    0,
    ctx,
    actor,
    'rollback: back to the version it ran before',
  );
  const unavailable = changed.filter((c) => c.previous_release === null);
  if (unavailable.length > 0) {
    await insertEvents(trx, [
      rolloutEvent(
        id,
        'rollout.rollback_unavailable',
        ctx.now,
        `no release ${name}@<previous version> in the store for ${unavailable.length} devices`,
        {
          devices: unavailable.slice(0, 100).map((u) => ({ device: u.device_id, version: u.from_version })),
        },
        actor,
      ),
    ]);
  }
  return { queued, unavailable: unavailable.length };
}

export async function rollbackUnavailable(
  s: SqlContext,
  id: string,
  limit: number,
): Promise<RollbackUnavailable> {
  const row = await s.db.selectFrom('rollouts').select('release_id').where('id', '=', id).executeTakeFirst();
  if (!row) return { release: '', total: 0, devices: [] };
  const name = await releaseNameOf(s.db, row.release_id);
  const rows = (await changedWithoutRollback(s.db, id, name).execute()).filter(
    (r) => r.previous_release === null,
  );
  return {
    release: name,
    total: rows.length,
    devices: rows.slice(0, limit).map((r) => ({ deviceId: r.device_id, version: r.from_version })),
  };
}
