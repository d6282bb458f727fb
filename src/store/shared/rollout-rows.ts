/**
 * Rollouts (RolloutStore) in shared SQL: the rollout row itself (create, read, list, update, targets joining)
 * and the façade over its other concerns: the plan query (plan-query.ts), the bulk writes of targets
 * (rollout-targets.ts, or the adapter's native RolloutRows), bulk transitions (rollout-transitions.ts),
 * progress and ETA reads (rollout-progress.ts) and leases (leases.ts).
 */
import type { Kysely, Selectable } from 'kysely';
import { FleetError } from '../../core/errors.js';
import type { FilterNode } from '../../core/filter/index.js';
import type { RetryPolicy } from '../../core/rollout/dispatch.js';
import type { HealthSample } from '../../core/rollout/health-gate.js';
import type { PlanDevice, PlannedTarget } from '../../core/rollout/plan.js';
import { checkRolloutTransition, type RolloutState } from '../../core/rollout/rollout-state.js';
import { storedSpecText } from '../../core/rollout/spec-document.js';
import type { DialectAdapter, RolloutRows, SqlContext } from '../adapter.js';
import type { Database, RolloutsTable } from '../schema.js';
import type {
  DecisionContext,
  NewEvent,
  NewRollout,
  PendingUpdate,
  PhaseHealthQuery,
  PhaseStateCount,
  PlanSelection,
  RollbackUnavailable,
  Rollout,
  RolloutEffects,
  RolloutPatch,
  RolloutStore,
  StatusHistory,
  TimeContext,
  UpdateAction,
  WaitingDevice,
} from '../store.js';
import { storedSpec } from '../stored-spec.js';
import { lockDevices } from './device-locks.js';
import { type Db, INSERT_CHUNK, insertEvents } from './events.js';
import { expandFilter } from './groups.js';
import * as leases from './leases.js';
import { lockRollout } from './leases.js';
import { newcomers } from './plan-query.js';
import { phaseHealth } from './rollout-health.js';
import { markWaitingElsewhere } from './rollout-overlaps.js';
import * as progress from './rollout-progress.js';
import { openUpdatesOf, sharedRolloutRows, WAITING } from './rollout-targets.js';
import * as transitions from './rollout-transitions.js';
import { rolloutEvent } from './rollout-transitions.js';
import { transact } from './transact.js';

function rowToRollout(row: Selectable<RolloutsTable>, release: string): Rollout {
  return {
    id: row.id,
    name: row.name,
    releaseId: row.release_id,
    release,
    spec: storedSpec(row.spec),
    state: row.state,
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

export class SqlRollouts implements RolloutStore {
  readonly db: Kysely<Database>;
  readonly adapter: DialectAdapter;
  /** The plan read and bulk writes of new targets: the adapter's native ones where it has them. */
  private readonly rows: RolloutRows;

  constructor(s: SqlContext) {
    this.db = s.db;
    this.adapter = s.adapter;
    this.rows = s.adapter.native?.rolloutRows?.(s) ?? sharedRolloutRows(s);
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

  async create<T extends NewRollout>(
    selection: PlanSelection,
    plan: (devices: PlanDevice[]) => T,
    ctx: TimeContext,
  ): Promise<T> {
    // Run again when another replica wrote an open update of a target meanwhile (see transact.ts): the plan is
    // made again from what is committed then.
    return transact(this.db, async (trx) => {
      const expanded = { ...selection, filter: await expandFilter(trx, selection.filter) };
      const { devices, waiting } = await this.rows.readPlanDevices(trx, expanded, ctx);
      await markWaitingElsewhere(trx, devices);
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
      // A device holds one open update (migration 0014): what it waited for is superseded before the new
      // one is written. When the read tells which devices have an update waiting, the others have none.
      const open = targets.filter((t) => t.state !== 'skipped').map((t) => t.deviceId);
      // Locked like an assign's (device-locks.ts): a rollout and an assign over shared devices queue.
      if (this.adapter.locksRows) await lockDevices(trx, open);
      const superseding = open.filter((id) => waiting === undefined || waiting.has(id));
      await this.rows.supersede(trx, rollout.id, superseding, ctx.now);
      await this.rows.insertTargets(trx, { ...rollout, action: updateAction(rollout) }, targets, ctx.now);
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
    return transact(this.db, async (trx) => {
      const row = await lockRollout(trx, this.adapter, id, ctx);
      const state = row.state;
      if (!from.includes(state)) {
        throw new FleetError('TRANSITION_NOT_ALLOWED', `rollout ${id} is ${state}`, { state });
      }
      if (patch.state !== undefined && patch.state !== state) checkRolloutTransition(state, patch.state);
      if (effects.atPhase !== undefined && Number(row.current_phase) !== effects.atPhase) {
        throw new FleetError(
          'TRANSITION_NOT_ALLOWED',
          `rollout ${id} has moved on to phase ${Number(row.current_phase) + 1} meanwhile`,
          { state },
        );
      }
      const set = { ...patchColumns(patch), updated_at: ctx.now };
      await trx.updateTable('rollouts').set(set).where('id', '=', id).execute();
      await insertEvents(trx, events);
      if (effects.releasePhase !== undefined)
        await transitions.releasePhaseIn(trx, id, effects.releasePhase, ctx);
      if (effects.endWaiting) {
        const e = effects.endWaiting;
        await transitions.endWaitingIn(trx, id, e.to, e.reason, e.alsoStarted, ctx, e.actor);
      }
      if (effects.rollbackBy !== undefined) {
        const { queued, unavailable } = await transitions.addRollbacksIn(trx, row, ctx, effects.rollbackBy);
        // The rollout itself says when the rollback is not whole, not only an event.
        if (unavailable > 0) {
          set.reason = `${set.reason ?? row.reason ?? 'rolled back'}: ${queued} devices returning, ${unavailable} cannot (no release of the version they ran before is stored)`;
          await trx.updateTable('rollouts').set({ reason: set.reason }).where('id', '=', id).execute();
        }
      }
      return rowToRollout({ ...row, ...set }, await this.releaseName(trx, row.release_id));
    });
  }

  async addTargets(id: string, targets: PlannedTarget[], ctx: DecisionContext): Promise<number> {
    if (targets.length === 0) return 0;
    return transact(this.db, async (trx) => {
      const row = await lockRollout(trx, this.adapter, id, ctx);
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
      // A device holds one open update: one that started work elsewhere (or joined this rollout) since the
      // newcomers were read stays out until it is free; what the others waited for is superseded first.
      const taken = new Set(
        (await openUpdatesOf(trx, ids))
          .filter((o) => o.rollout_id === id || !WAITING.includes(o.state))
          .map((o) => o.device_id),
      );
      const joining = targets.filter((t) => t.state === 'skipped' || !taken.has(t.deviceId));
      await this.rows.supersede(
        trx,
        id,
        ids.filter((d) => !taken.has(d)),
        ctx.now,
      );
      await this.rows.insertTargets(trx, { id, releaseId: row.release_id, action }, joining, ctx.now);
      const joined = joining.filter((t) => t.state !== 'skipped').length;
      await trx
        .updateTable('rollouts')
        .set({ targets: Number(row.targets) + joined, updated_at: ctx.now })
        .where('id', '=', id)
        .execute();
      await insertEvents(
        trx,
        joining
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

  counts(id: string): Promise<PhaseStateCount[]> {
    return progress.counts(this, id);
  }

  timeOut(id: string, grantedBefore: number, ctx: DecisionContext): Promise<number> {
    return transitions.timeOut(this, id, grantedBefore, ctx);
  }

  retryFailed(id: string, policy: RetryPolicy, ctx: DecisionContext): Promise<number> {
    return transitions.retryFailed(this, id, policy, ctx);
  }

  waitingOnline(id: string, phase: number, ctx: TimeContext): Promise<number> {
    return progress.waitingOnline(this, id, phase, ctx);
  }

  phaseHealth(id: string, phase: number, query: PhaseHealthQuery): Promise<HealthSample> {
    return phaseHealth(this, id, phase, query);
  }

  async planDevices(selection: PlanSelection, ctx: TimeContext): Promise<PlanDevice[]> {
    const expanded = { ...selection, filter: await expandFilter(this.db, selection.filter) };
    const devices = await this.rows.planDevices(expanded, ctx);
    await markWaitingElsewhere(this.db, devices);
    return devices;
  }

  async newcomers(
    id: string,
    filter: FilterNode | undefined,
    tagKey: string | null,
    ctx: TimeContext,
  ): Promise<PlanDevice[]> {
    return newcomers(this, id, await expandFilter(this.db, filter), tagKey, ctx);
  }

  addSwitches(id: string, ctx: DecisionContext): Promise<number> {
    return transitions.addSwitches(this, id, ctx);
  }

  waitingDevices(id: string, limit: number): Promise<{ devices: WaitingDevice[]; total: number }> {
    return progress.waitingDevices(this, id, limit);
  }

  pendingUpdates(id: string, after: string | null, limit: number): Promise<PendingUpdate[]> {
    return progress.pendingUpdates(this, id, after, limit);
  }

  rollbackUnavailable(id: string, limit: number): Promise<RollbackUnavailable> {
    return transitions.rollbackUnavailable(this, id, limit);
  }

  targetZones(id: string): Promise<Array<string | null>> {
    return progress.targetZones(this, id);
  }

  statusHistory(deviceIds: string[], since: number): Promise<Map<string, StatusHistory>> {
    return progress.statusHistory(this, deviceIds, since);
  }

  updateDurations(id: string, limit: number): Promise<number[]> {
    return progress.updateDurations(this, id, limit);
  }

  failures(
    id: string,
    limit: number,
  ): Promise<Array<{ deviceId: string; error: string | null; at: number }>> {
    return progress.failures(this, id, limit);
  }

  finishedSince(id: string, since: number): Promise<number[]> {
    return progress.finishedSince(this, id, since);
  }

  claimLeases(owner: string, now: number, ttlMs: number): Promise<string[]> {
    return leases.claimLeases(this, owner, now, ttlMs);
  }

  releaseLeases(owner: string): Promise<void> {
    return leases.releaseLeases(this, owner);
  }
  hardwareUpdateDurations(hardwareTypes: string[], except: string | null, limit: number): Promise<number[]> {
    return progress.hardwareUpdateDurations(this, hardwareTypes, except, limit);
  }
}

/** The action devices are told: staging only for download_only and for blue-green's first step. */
function updateAction(rollout: { spec: { strategy: string; action: string } }): UpdateAction {
  return rollout.spec.strategy === 'blue_green' || rollout.spec.action === 'download_only'
    ? 'download_only'
    : 'install';
}
