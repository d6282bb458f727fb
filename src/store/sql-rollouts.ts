/**
 * Rollouts over Kysely: the rollout row, its device updates in bulk (phase starts, timeouts, retries,
 * follow-up switches and rollbacks) and the leases that give each open rollout one driving replica.
 * Bulk moves write one rollout event with their count; a device's own transition writes its own event.
 */
import {
  type Expression,
  type ExpressionBuilder,
  type Insertable,
  type Kysely,
  type Selectable,
  sql,
} from 'kysely';
import { deviceStatus } from '../core/device.js';
import { FleetError } from '../core/errors.js';
import type { FilterNode } from '../core/filter/index.js';
import { afterFailure, type RetryPolicy, TIMED_OUT_REASON } from '../core/rollout/dispatch.js';
import type { UpdatePurpose } from '../core/rollout/offer.js';
import type { PlanDevice, PlannedTarget } from '../core/rollout/plan.js';
import {
  checkRolloutTransition,
  OPEN_ROLLOUT_STATES,
  type RolloutState,
} from '../core/rollout/rollout-state.js';
import { storedSpecText } from '../core/rollout/spec-document.js';
import { ACTIVE_STATES, type UpdateState } from '../core/update-state.js';
import { compileFilter } from './filter-sql.js';
import type { Dialect } from './migrations.js';
import { rolloutCounts } from './rollout-counts.js';
import type { Database, DeviceUpdatesTable, RolloutsTable } from './schema.js';
import { readStatusHistory } from './sql-event-retention.js';
import { type Db, INSERT_CHUNK, insertEvents } from './sql-events.js';
import type {
  DecisionContext,
  NewEvent,
  NewRollout,
  PendingUpdate,
  PhaseStateCount,
  PlanSelection,
  RollbackUnavailable,
  Rollout,
  RolloutEffects,
  RolloutPatch,
  RolloutStore,
  StatusHistory,
  TimeContext,
  WaitingDevice,
} from './store.js';
import { storedSpec } from './stored-spec.js';
import { updateEvent } from './update-effects.js';
import { newUpdateId } from './update-ids.js';

const ACTIVE = [...ACTIVE_STATES] as UpdateState[];
export const WAITING: UpdateState[] = ['pending', 'scheduled'];
/**
 * The waiting states written out in the SQL text, as the partial index device_updates_waiting is defined:
 * only a query that says so in the same words may use it (a bound parameter could be anything).
 */
const WAITING_SQL = sql<boolean>`state in ('pending', 'scheduled')`;

export interface WaitingRow {
  id: string;
  device_id: string;
  rollout_id: string | null;
  state: string;
}

/** The events of updates waiting elsewhere that a new rollout's assignment supersedes (cancels). */
export function supersededEvents(old: readonly WaitingRow[], rolloutId: string, now: number): NewEvent[] {
  const reason = `superseded by rollout ${rolloutId}`;
  return old.map((o) =>
    updateEvent(
      { id: o.id, deviceId: o.device_id, rolloutId: o.rollout_id },
      o.state as UpdateState,
      'cancelled',
      now,
      null,
      reason,
    ),
  );
}

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

function rowToRollout(row: Selectable<RolloutsTable>, release: string): Rollout {
  return {
    id: row.id,
    name: row.name,
    releaseId: row.release_id,
    release,
    spec: storedSpec(row.spec),
    state: row.state as RolloutState,
    currentPhase: Number(row.current_phase),
    phaseStarts: JSON.parse(row.phase_starts) as number[],
    gates: JSON.parse(row.gates) as Rollout['gates'],
    approvedPhase: Number(row.approved_phase),
    promoted: Number(row.promoted) === 1,
    targets: Number(row.targets),
    reason: row.reason,
    createdBy: row.created_by,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    startedAt: row.started_at === null ? null : Number(row.started_at),
    finishedAt: row.finished_at === null ? null : Number(row.finished_at),
  };
}

function patchColumns(patch: RolloutPatch): Partial<RolloutsTable> {
  const set: Partial<RolloutsTable> = {};
  if (patch.state !== undefined) set.state = patch.state;
  if (patch.currentPhase !== undefined) set.current_phase = patch.currentPhase;
  if (patch.phaseStarts !== undefined) set.phase_starts = JSON.stringify(patch.phaseStarts);
  if (patch.gates !== undefined) set.gates = JSON.stringify(patch.gates);
  if (patch.approvedPhase !== undefined) set.approved_phase = patch.approvedPhase;
  if (patch.promoted !== undefined) set.promoted = patch.promoted ? 1 : 0;
  if (patch.reason !== undefined) set.reason = patch.reason;
  if (patch.startedAt !== undefined) set.started_at = patch.startedAt;
  if (patch.finishedAt !== undefined) set.finished_at = patch.finishedAt;
  if (patch.targets !== undefined) set.targets = patch.targets;
  return set;
}

const rolloutEvent = (
  id: string,
  type: string,
  at: number,
  reason: string,
  data: Record<string, unknown>,
  actor: string | null = null,
): NewEvent => ({ at, type, deviceId: null, rolloutId: id, actor, reason, data });

export class SqlRollouts implements RolloutStore {
  constructor(
    protected readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {}

  /**
   * Serializes decisions on one rollout across replicas (SQLite serializes every write transaction anyway),
   * and fences the engine: a replica taking the lease over must write `lease_owner` under this same lock, so
   * a holder that still finds its name here is the only one deciding until the transaction commits.
   */
  private async lock(trx: Db, id: string, ctx?: DecisionContext): Promise<Selectable<RolloutsTable>> {
    let q = trx.selectFrom('rollouts').selectAll().where('id', '=', id);
    if (this.dialect === 'postgres') q = q.forUpdate();
    const row = await q.executeTakeFirst();
    if (!row) throw new FleetError('NOT_FOUND', `rollout ${id} does not exist`);
    if (ctx?.leaseHolder !== undefined && row.lease_owner !== ctx.leaseHolder) {
      throw new FleetError(
        'CONFLICT',
        `rollout ${id} is driven by ${row.lease_owner ?? 'no replica'} now, not ${ctx.leaseHolder}`,
        { lease: 'lost', owner: row.lease_owner },
      );
    }
    return row;
  }

  private async releaseName(db: Db, releaseId: string): Promise<string> {
    const r = await db
      .selectFrom('releases')
      .select(['name', 'version'])
      .where('id', '=', releaseId)
      .executeTakeFirst();
    return r ? `${r.name}@${r.version}` : releaseId;
  }

  /** The planned device updates of a new rollout, as rows. */
  private targetRows(
    rollout: { id: string; releaseId: string; action: string },
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

  /**
   * Writes the new rollout's device updates inside `trx`. Portable: multi-row INSERTs of INSERT_CHUNK rows;
   * the SQLite store overrides it with a native prepared statement (sqlite/rollouts.ts).
   */
  protected async insertTargets(
    trx: Db,
    rollout: { id: string; releaseId: string; action: string },
    targets: PlannedTarget[],
    now: number,
  ): Promise<void> {
    const rows = this.targetRows(rollout, inWriteOrder(targets).flat(), now);
    for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
      await trx
        .insertInto('device_updates')
        .values(rows.slice(i, i + INSERT_CHUNK))
        .execute();
    }
  }

  /** Updates of these devices from elsewhere (another rollout or none) that have not started. */
  private async waitingElsewhere(trx: Db, rolloutId: string, deviceIds: string[]): Promise<WaitingRow[]> {
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

  /** Open updates of these devices from elsewhere that have not started are cancelled: the newest wins. */
  protected async supersede(trx: Db, rolloutId: string, deviceIds: string[], now: number): Promise<void> {
    const old = await this.waitingElsewhere(trx, rolloutId, deviceIds);
    for (let i = 0; i < old.length; i += INSERT_CHUNK) {
      await trx
        .updateTable('device_updates')
        .set({
          state: 'cancelled',
          error: `superseded by rollout ${rolloutId}`,
          updated_at: now,
          finished_at: now,
        })
        .where(
          'id',
          'in',
          old.slice(i, i + INSERT_CHUNK).map((o) => o.id),
        )
        .execute();
    }
    await insertEvents(trx, supersededEvents(old, rolloutId, now));
  }

  async create<T extends NewRollout>(
    selection: PlanSelection,
    plan: (devices: PlanDevice[]) => T,
    ctx: TimeContext,
  ): Promise<T> {
    return this.db.transaction().execute(async (trx) => {
      const { devices, waiting } = await this.readPlanDevices(trx, selection, ctx);
      const planned = plan(devices);
      const { rollout, targets } = planned;
      await trx
        .insertInto('rollouts')
        .values({
          id: rollout.id,
          name: rollout.name,
          release_id: rollout.releaseId,
          spec: storedSpecText(rollout.spec),
          strategy: rollout.spec.strategy,
          state: rollout.state,
          current_phase: rollout.currentPhase,
          phase_starts: JSON.stringify(rollout.phaseStarts),
          gates: '[]',
          approved_phase: -1,
          promoted: 0,
          targets: rollout.targets,
          reason: null,
          created_by: rollout.createdBy,
          created_at: rollout.createdAt,
          updated_at: rollout.createdAt,
          started_at: rollout.startedAt,
          finished_at: null,
          lease_owner: null,
          lease_until: null,
        })
        .execute();
      await this.insertTargets(trx, { ...rollout, action: updateAction(rollout) }, targets, ctx.now);
      // When the read tells which devices have an update waiting, the others have nothing to supersede.
      const superseding = targets
        .filter((t) => t.state !== 'skipped' && (waiting === undefined || waiting.has(t.deviceId)))
        .map((t) => t.deviceId);
      await this.supersede(trx, rollout.id, superseding, ctx.now);
      const skipped: Record<string, number> = {};
      for (const t of targets) if (t.reason !== null) skipped[t.reason] = (skipped[t.reason] ?? 0) + 1;
      await insertEvents(trx, [
        rolloutEvent(
          rollout.id,
          'rollout.created',
          ctx.now,
          `${rollout.spec.strategy} rollout of ${rollout.release} to ${rollout.targets} devices`,
          { state: rollout.state, targets: rollout.targets, skipped, seed: rollout.spec.seed },
          rollout.createdBy,
        ),
      ]);
      return planned;
    });
  }

  async get(id: string): Promise<Rollout | undefined> {
    const row = await this.db.selectFrom('rollouts').selectAll().where('id', '=', id).executeTakeFirst();
    return row && rowToRollout(row, await this.releaseName(this.db, row.release_id));
  }

  async list(query: { states?: readonly RolloutState[]; limit: number }): Promise<Rollout[]> {
    let q = this.db
      .selectFrom('rollouts as ro')
      .innerJoin('releases as r', 'r.id', 'ro.release_id')
      .selectAll('ro')
      .select(['r.name as release_name', 'r.version as release_version']);
    if (query.states && query.states.length > 0) q = q.where('ro.state', 'in', [...query.states]);
    const rows = await q.orderBy('ro.created_at', 'desc').orderBy('ro.id').limit(query.limit).execute();
    return rows.map((row) => rowToRollout(row, `${row.release_name}@${row.release_version}`));
  }

  async update(
    id: string,
    from: readonly RolloutState[],
    patch: RolloutPatch,
    events: NewEvent[],
    ctx: DecisionContext,
    effects: RolloutEffects = {},
  ): Promise<Rollout> {
    return this.db.transaction().execute(async (trx) => {
      const row = await this.lock(trx, id, ctx);
      const state = row.state as RolloutState;
      if (!from.includes(state)) {
        throw new FleetError('TRANSITION_NOT_ALLOWED', `rollout ${id} is ${state}`, { state });
      }
      if (patch.state !== undefined && patch.state !== state) checkRolloutTransition(state, patch.state);
      const set = { ...patchColumns(patch), updated_at: ctx.now };
      await trx.updateTable('rollouts').set(set).where('id', '=', id).execute();
      await insertEvents(trx, events);
      if (effects.releasePhase !== undefined) await this.releasePhaseIn(trx, id, effects.releasePhase, ctx);
      if (effects.endWaiting) {
        const e = effects.endWaiting;
        await this.endWaitingIn(trx, id, e.to, e.reason, e.alsoStarted, ctx, e.actor);
      }
      if (effects.rollbackBy !== undefined) {
        const { queued, unavailable } = await this.addRollbacksIn(trx, row, ctx, effects.rollbackBy);
        // The rollout itself says when the rollback is not whole, not only an event.
        if (unavailable > 0) {
          set.reason = `${set.reason ?? row.reason ?? 'rolled back'}: ${queued} devices returning, ${unavailable} cannot (no release of the version they ran before is stored)`;
          await trx.updateTable('rollouts').set({ reason: set.reason }).where('id', '=', id).execute();
        }
      }
      return rowToRollout({ ...row, ...set }, await this.releaseName(trx, row.release_id));
    });
  }

  async counts(id: string): Promise<PhaseStateCount[]> {
    return rolloutCounts(this.db, this.dialect, id);
  }

  private async releasePhaseIn(db: Db, id: string, phase: number, ctx: TimeContext): Promise<number> {
    const result = await db
      .updateTable('device_updates')
      .set({ state: 'pending', updated_at: ctx.now })
      .where('rollout_id', '=', id)
      .where(WAITING_SQL)
      .where('state', '=', 'scheduled')
      .where('phase', '<=', phase)
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  /** Moves each selected row and writes one event per device, in one transaction. */
  private async moveEach(
    id: string,
    select: (trx: Db) => Promise<Array<{ id: string; device_id: string; state: string; attempts: number }>>,
    decide: (row: {
      state: string;
      attempts: number;
    }) => { to: UpdateState; reason: string; set: Record<string, unknown> } | null,
    ctx: DecisionContext,
    actor: string | null = null,
  ): Promise<number> {
    return this.db.transaction().execute(async (trx) => {
      await this.lock(trx, id, ctx);
      const rows = await select(trx);
      const events: NewEvent[] = [];
      for (const row of rows) {
        const d = decide(row);
        if (!d) continue;
        const moved = await trx
          .updateTable('device_updates')
          .set({ state: d.to, updated_at: ctx.now, ...d.set })
          .where('id', '=', row.id)
          .where('state', '=', row.state)
          .executeTakeFirst();
        if (Number(moved.numUpdatedRows) !== 1) continue;
        const update = { id: row.id, deviceId: row.device_id, rolloutId: id };
        events.push(updateEvent(update, row.state as UpdateState, d.to, ctx.now, actor, d.reason));
      }
      await insertEvents(trx, events);
      return events.length;
    });
  }

  async timeOut(id: string, grantedBefore: number, ctx: DecisionContext): Promise<number> {
    return this.moveEach(
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

  async retryFailed(id: string, policy: RetryPolicy, ctx: DecisionContext): Promise<number> {
    return this.moveEach(
      id,
      (trx) =>
        trx
          .selectFrom('device_updates')
          .select(['id', 'device_id', 'state', 'attempts', 'finished_at'])
          .where('rollout_id', '=', id)
          .where('state', '=', 'failed')
          .where('purpose', '=', 'update')
          .where('attempts', '<', policy.attempts)
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

  private async endWaitingIn(
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
    const result = await trx
      .updateTable('device_updates')
      .set({ state: to, error: reason, updated_at: ctx.now, finished_at: ctx.now })
      .where('rollout_id', '=', id)
      .where('state', 'in', states)
      .executeTakeFirst();
    const n = Number(result.numUpdatedRows);
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

  async waitingOnline(id: string, phase: number, ctx: TimeContext): Promise<number> {
    const row = await this.db
      .selectFrom('device_updates as u')
      .innerJoin('devices as d', 'd.id', 'u.device_id')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('u.rollout_id', '=', id)
      .where('u.phase', '=', phase)
      .where(WAITING_SQL)
      .where('d.last_seen', '>=', ctx.now - ctx.thresholds.offlineAfterMs)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /**
   * The state of a device's update (table alias `u`) in a look-up of that device's updates by state: the
   * SQLite store overrides it so the look-up seeks the device once rather than once per state.
   */
  protected updateState(u: string): Expression<string> {
    return sql.ref(`${u}.state`);
  }

  /** Devices matching the filter, by id, with what the planner needs to know of each. */
  protected planQuery(db: Db, filter: FilterNode | undefined, tagKey: string | null, ctx: TimeContext) {
    return db
      .selectFrom('devices as devices')
      .select([
        'devices.id',
        'devices.last_seen',
        'devices.decommissioned_at',
        'devices.timezone',
        'devices.hardware_type',
        'devices.firmware_version',
        // Looked up only when the spec has a tag to count slots by.
        (eb) =>
          tagKey === null
            ? sql<string | null>`null`.as('tag_value')
            : eb
                .selectFrom('device_tags as t')
                .select('t.value')
                .whereRef('t.device_id', '=', 'devices.id')
                .where('t.key', '=', tagKey)
                .$asScalar()
                .$castTo<string | null>()
                .as('tag_value'),
        (eb) =>
          eb
            .selectFrom('device_updates as a')
            .select('a.id')
            .whereRef('a.device_id', '=', 'devices.id')
            .where(this.updateState('a'), 'in', ACTIVE)
            .limit(1)
            .as('busy_with'),
      ])
      .where((eb) => (filter ? compileFilter(eb, filter, ctx) : eb.lit(true)))
      .where('devices.decommissioned_at', 'is', null)
      .orderBy('devices.id');
  }

  protected toPlanDevice(
    r: {
      id: string;
      last_seen: number | null;
      decommissioned_at: number | null;
      timezone: string | null;
      hardware_type: string | null;
      firmware_version: string | null;
      tag_value: string | null;
      busy_with: string | null;
    },
    tagKey: string | null,
    ctx: TimeContext,
  ): PlanDevice {
    return {
      id: r.id,
      status: deviceStatus(
        r.last_seen === null ? null : Number(r.last_seen),
        r.decommissioned_at === null ? null : Number(r.decommissioned_at),
        ctx.now,
        ctx.thresholds,
      ),
      lastSeen: r.last_seen === null ? null : Number(r.last_seen),
      timezone: r.timezone,
      hardwareType: r.hardware_type,
      firmwareVersion: r.firmware_version,
      tagValue: tagKey === null ? null : r.tag_value,
      busyWith: r.busy_with,
    };
  }

  /**
   * The devices a new rollout plans over. `waiting`, when the read tells, holds those with an update that has not
   * started (the only ones that can have one to supersede); without it every target is checked.
   */
  protected async readPlanDevices(
    db: Db,
    { filter, tagKey }: PlanSelection,
    ctx: TimeContext,
  ): Promise<{ devices: PlanDevice[]; waiting?: Set<string> }> {
    const rows = await this.planQuery(db, filter, tagKey, ctx).execute();
    return { devices: rows.map((r) => this.toPlanDevice(r, tagKey, ctx)) };
  }

  async planDevices(selection: PlanSelection, ctx: TimeContext): Promise<PlanDevice[]> {
    return (await this.readPlanDevices(this.db, selection, ctx)).devices;
  }

  async newcomers(
    id: string,
    filter: FilterNode | undefined,
    tagKey: string | null,
    ctx: TimeContext,
  ): Promise<PlanDevice[]> {
    const rows = await this.planQuery(this.db, filter, tagKey, ctx)
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('device_updates as mine')
              .select('mine.id')
              .whereRef('mine.device_id', '=', 'devices.id')
              .where('mine.rollout_id', '=', id)
              .where('mine.state', '!=', 'skipped'),
          ),
        ),
      )
      .execute();
    return rows.map((r) => this.toPlanDevice(r, tagKey, ctx));
  }

  async addTargets(id: string, targets: PlannedTarget[], ctx: DecisionContext): Promise<number> {
    if (targets.length === 0) return 0;
    return this.db.transaction().execute(async (trx) => {
      const row = await this.lock(trx, id, ctx);
      const action = updateAction({ spec: storedSpec(row.spec) });
      // A device skipped earlier (offline, busy, on another version) that now qualifies takes its place again.
      const ids = targets.map((t) => t.deviceId);
      for (let i = 0; i < ids.length; i += INSERT_CHUNK) {
        await trx
          .deleteFrom('device_updates')
          .where('rollout_id', '=', id)
          .where('state', '=', 'skipped')
          .where('device_id', 'in', ids.slice(i, i + INSERT_CHUNK))
          .execute();
      }
      await this.insertTargets(trx, { id, releaseId: row.release_id, action }, targets, ctx.now);
      await this.supersede(trx, id, ids, ctx.now);
      const joined = targets.filter((t) => t.state !== 'skipped').length;
      await trx
        .updateTable('rollouts')
        .set({ targets: Number(row.targets) + joined, updated_at: ctx.now })
        .where('id', '=', id)
        .execute();
      await insertEvents(
        trx,
        targets
          .filter((t) => t.state !== 'skipped')
          .map((t) => ({
            at: ctx.now,
            type: 'update.pending',
            deviceId: t.deviceId,
            rolloutId: id,
            actor: null,
            reason: 'joined: matches the rollout filter',
            data: { to: 'pending', phase: t.phase },
          })),
      );
      return joined;
    });
  }

  /** Inserts follow-up rows (switches, rollbacks) for the devices a query picks. */
  private async addFollowUps(
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
  ): Promise<void> {
    const values = rows.map((r) => ({
      id: newUpdateId(),
      device_id: r.device_id,
      release_id: r.release_id,
      rollout_id: id,
      state: 'pending',
      // A rollback installs the previous release: a device whose other slot still holds it just switches back.
      action: purpose === 'switch' ? 'switch' : 'install',
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
  }

  async addSwitches(id: string, ctx: DecisionContext): Promise<number> {
    return this.db.transaction().execute(async (trx) => {
      await this.lock(trx, id, ctx);
      const staged = await trx
        .selectFrom('device_updates as u')
        .select(['u.device_id', 'u.release_id', 'u.from_version', 'u.slot_key'])
        .where('u.rollout_id', '=', id)
        .where('u.purpose', '=', 'update')
        .where('u.state', '=', 'succeeded')
        .where(withoutFollowUp(id, 'switch'))
        .execute();
      await this.addFollowUps(
        trx,
        id,
        'switch',
        staged,
        1,
        ctx,
        null,
        'blue-green switch to the staged slot',
      );
      return staged.length;
    });
  }

  /**
   * Devices this rollout changed (an install that succeeded, or a blue-green switch) that have no rollback yet,
   * with the stored release of the version each ran before (null: none is in the store).
   */
  private changedWithoutRollback(db: Db, id: string, releaseName: string) {
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

  private async releaseNameOf(db: Db, releaseId: string): Promise<string> {
    const release = await db
      .selectFrom('releases')
      .select('name')
      .where('id', '=', releaseId)
      .executeTakeFirstOrThrow();
    return release.name;
  }

  private async addRollbacksIn(
    trx: Db,
    rollout: Selectable<RolloutsTable>,
    ctx: TimeContext,
    actor: string,
  ): Promise<{ queued: number; unavailable: number }> {
    const id = rollout.id;
    const name = await this.releaseNameOf(trx, rollout.release_id);
    const changed = await this.changedWithoutRollback(trx, id, name).execute();
    const back = changed.filter((c) => c.previous_release !== null);
    await this.addFollowUps(
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
    return { queued: back.length, unavailable: unavailable.length };
  }

  async rollbackUnavailable(id: string, limit: number): Promise<RollbackUnavailable> {
    const row = await this.db
      .selectFrom('rollouts')
      .select('release_id')
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) return { release: '', total: 0, devices: [] };
    const name = await this.releaseNameOf(this.db, row.release_id);
    const rows = (await this.changedWithoutRollback(this.db, id, name).execute()).filter(
      (r) => r.previous_release === null,
    );
    return {
      release: name,
      total: rows.length,
      devices: rows.slice(0, limit).map((r) => ({ deviceId: r.device_id, version: r.from_version })),
    };
  }

  async pendingUpdates(id: string, after: string | null, limit: number): Promise<PendingUpdate[]> {
    let q = this.db
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
      purpose: r.purpose as UpdatePurpose,
      notBefore: r.not_before === null ? null : Number(r.not_before),
      deviceZone: r.timezone,
    }));
  }

  async targetZones(id: string): Promise<Array<string | null>> {
    const rows = await this.db
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

  async waitingDevices(id: string, limit: number): Promise<{ devices: WaitingDevice[]; total: number }> {
    // The states are written out so that the partial index device_updates_waiting answers, and only its
    // entries are read until the sample is chosen.
    const waiting = sql<boolean>`u.state in ('pending', 'scheduled')`;
    const total = await this.db
      .selectFrom('device_updates as u')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('u.rollout_id', '=', id)
      .where(waiting)
      .executeTakeFirstOrThrow();
    // Evenly spaced in the index's order, by phase and then update id (the order the rollout wrote them in,
    // device by device): every phase and every stretch of the fleet is in the sample in its own share, and it
    // is the same sample on every call while nothing moves.
    const step = Math.max(1, Math.floor(Number(total.n) / Math.max(1, limit)));
    const numbered = this.db
      .selectFrom('device_updates as u')
      .select(['u.id', 'u.phase', sql<number>`row_number() over (order by u.phase, u.id)`.as('n')])
      .where('u.rollout_id', '=', id)
      .where(waiting);
    const picked = this.db
      .selectFrom(numbered.as('w'))
      .select(['w.id', 'w.phase'])
      .where(sql<boolean>`(w.n - 1) % ${step} = 0`)
      .orderBy('w.phase')
      .orderBy('w.id')
      .limit(limit);
    const rows = await this.db
      .selectFrom(picked.as('s'))
      .innerJoin('device_updates as u', 'u.id', 's.id')
      .innerJoin('devices as d', 'd.id', 'u.device_id')
      .select(['u.device_id', 'u.phase', 'd.last_seen', 'd.timezone', 'd.hardware_type'])
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
      })),
    };
  }

  statusHistory(deviceIds: string[], since: number): Promise<Map<string, StatusHistory>> {
    return readStatusHistory(this.db, deviceIds, since);
  }

  async updateDurations(id: string, limit: number): Promise<number[]> {
    const rows = await this.db
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

  async failures(
    id: string,
    limit: number,
  ): Promise<Array<{ deviceId: string; error: string | null; at: number }>> {
    const rows = await this.db
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

  async finishedSince(id: string, since: number): Promise<number[]> {
    const rows = await this.db
      .selectFrom('device_updates')
      .select('finished_at')
      .where('rollout_id', '=', id)
      .where('state', 'in', ['succeeded', 'failed', 'rolled_back'])
      .where('finished_at', '>=', since)
      .execute();
    return rows.map((r) => Number(r.finished_at));
  }

  async claimLeases(owner: string, now: number, ttlMs: number): Promise<string[]> {
    const free = (eb: ExpressionBuilder<Database, 'rollouts'>) =>
      eb.and([
        eb('state', 'in', [...OPEN_ROLLOUT_STATES]),
        eb.or([eb('lease_owner', 'is', null), eb('lease_owner', '=', owner), eb('lease_until', '<', now)]),
      ]);
    const rows =
      this.dialect === 'sqlite'
        ? // One statement: SQLite runs one writer at a time, so the check and the write are one step.
          await this.db
            .updateTable('rollouts')
            .set({ lease_owner: owner, lease_until: now + ttlMs })
            .where(free)
            .returning(['id', 'created_at'])
            .execute()
        : await this.db.transaction().execute(async (trx) => {
            // The rows are locked first, in id order, so two claimers never deadlock. A row another replica
            // claimed meanwhile is checked again once its lock is released (READ COMMITTED re-reads the newest
            // version of a row it locks) and no longer qualifies: one replica only comes out holding it.
            const locked = await trx
              .selectFrom('rollouts')
              .select(['id', 'created_at'])
              .where(free)
              .orderBy('id')
              .forUpdate()
              .execute();
            for (let i = 0; i < locked.length; i += INSERT_CHUNK) {
              await trx
                .updateTable('rollouts')
                .set({ lease_owner: owner, lease_until: now + ttlMs })
                .where(
                  'id',
                  'in',
                  locked.slice(i, i + INSERT_CHUNK).map((r) => r.id),
                )
                .execute();
            }
            return locked;
          });
    rows.sort((a, b) => Number(a.created_at) - Number(b.created_at) || (a.id < b.id ? -1 : 1));
    return rows.map((r) => r.id);
  }

  async releaseLeases(owner: string): Promise<void> {
    const release = (db: Db, ids?: string[]) => {
      let q = db
        .updateTable('rollouts')
        .set({ lease_owner: null, lease_until: null })
        .where('lease_owner', '=', owner);
      if (ids) q = q.where('id', 'in', ids);
      return q.execute();
    };
    if (this.dialect === 'sqlite') {
      await release(this.db);
      return;
    }
    await this.db.transaction().execute(async (trx) => {
      // Locked in id order like a claim, so a release and a claim never deadlock.
      const rows = await trx
        .selectFrom('rollouts')
        .select('id')
        .where('lease_owner', '=', owner)
        .orderBy('id')
        .forUpdate()
        .execute();
      if (rows.length > 0)
        await release(
          trx,
          rows.map((r) => r.id),
        );
    });
  }
}

/** The action devices are told: staging only for download_only and for blue-green's first step. */
function updateAction(rollout: { spec: { strategy: string; action: string } }): string {
  return rollout.spec.strategy === 'blue_green' || rollout.spec.action === 'download_only'
    ? 'download_only'
    : 'install';
}
