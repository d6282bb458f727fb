/**
 * Configuration rollouts in shared SQL (docs/configuration.md, "Rolling a staged version out with a strategy"):
 * one `config_rollouts` row per rollout, at most one active per document (a partial unique index), each change of
 * state made only from the states it may come from, with its `config.rollout.*` event in the same transaction. The
 * devices a phase reached are those released while it was the current one (`config_releases.released_at`).
 */
import { randomBytes } from 'node:crypto';
import {
  ACTIVE_CONFIG_ROLLOUT_STATES,
  type ConfigRolloutPhase,
  type ConfigRolloutPlan,
  type ConfigRolloutState,
  type PhaseCounts,
} from '../../core/config-rollout.js';
import { FleetError } from '../../core/errors.js';
import type { SqlContext } from '../adapter.js';
import type {
  ConfigRolloutChange,
  ConfigRolloutCounts,
  ConfigRolloutRecord,
  ConfigRolloutStore,
} from '../config-rollout-store.js';
import { isUniqueViolation } from '../db-errors.js';
import type { ConfigRolloutsTable } from '../schema.js';
import type { TimeContext } from '../store.js';
import { mustBeStaged, progressOf, stagedReach, stagedRow } from './config.js';
import { type Db, insertEvents } from './events.js';

function recordOf(row: ConfigRolloutsTable): ConfigRolloutRecord {
  return {
    id: row.id,
    name: row.name,
    version: row.version,
    plan: {
      phases: JSON.parse(row.phases) as ConfigRolloutPhase[],
      soakMs: Number(row.soak_ms),
      maxFailureRate: Number(row.max_failure_rate),
      promote: Number(row.promote) === 1,
    },
    scope: row.scope,
    state: row.state as ConfigRolloutState,
    phase: row.phase,
    phaseStarts: (JSON.parse(row.phase_starts) as number[]).map(Number),
    reason: row.reason,
    finalCounts: row.final_counts === null ? null : (JSON.parse(row.final_counts) as PhaseCounts[]),
    createdAt: Number(row.created_at),
    createdBy: row.created_by,
    updatedAt: Number(row.updated_at),
  };
}

const eventOf = (
  r: Pick<ConfigRolloutRecord, 'id' | 'name' | 'version'>,
  type: string,
  at: number,
  actor: string,
  reason: string | null,
  data: Record<string, unknown> = {},
) => ({
  at,
  type,
  deviceId: null,
  rolloutId: null,
  actor,
  reason,
  data: { name: r.name, version: r.version, rollout: r.id, ...data },
});

const activeConflict = (name: string) =>
  new FleetError(
    'CONFLICT',
    `configuration ${name} already has an active rollout; pause, resume or cancel it (fleetd config rollouts ${name})`,
  );

export class SqlConfigRollouts implements ConfigRolloutStore {
  constructor(private readonly s: SqlContext) {}

  async create(
    name: string,
    version: number,
    plan: ConfigRolloutPlan,
    scope: string | null,
    ctx: TimeContext,
    actor: string,
  ): Promise<ConfigRolloutRecord> {
    try {
      return await this.s.db.transaction().execute(async (trx) => {
        const staged = await mustBeStaged(trx, name, version, scope);
        if (await activeRow(trx, name)) throw activeConflict(name);
        const row: ConfigRolloutsTable = {
          id: `cfr_${randomBytes(9).toString('base64url')}`,
          name,
          version,
          phases: JSON.stringify(plan.phases),
          soak_ms: plan.soakMs,
          max_failure_rate: plan.maxFailureRate,
          promote: plan.promote ? 1 : 0,
          // The document's: its principals see the rollout, and its releases are made within it.
          scope: staged.scope,
          state: 'running',
          phase: 0,
          phase_starts: JSON.stringify([ctx.now]),
          reason: null,
          final_counts: null,
          created_at: ctx.now,
          created_by: actor,
          updated_at: ctx.now,
          lease_owner: null,
          lease_until: null,
        };
        await trx.insertInto('config_rollouts').values(row).execute();
        const record = recordOf(row);
        await insertEvents(trx, [
          eventOf(record, 'config.rollout.started', ctx.now, actor, null, {
            phases: plan.phases,
            soak_ms: plan.soakMs,
            max_failure_rate: plan.maxFailureRate,
            promote: plan.promote,
          }),
        ]);
        return record;
      });
    } catch (error) {
      // Another replica started one for the same document at the same time: the index kept it to one.
      if (isUniqueViolation(error)) throw activeConflict(name);
      throw error;
    }
  }

  async latest(name: string): Promise<ConfigRolloutRecord | undefined> {
    const active = await activeRow(this.s.db, name);
    if (active) return recordOf(active);
    const row = await this.s.db
      .selectFrom('config_rollouts')
      .selectAll()
      .where('name', '=', name)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .executeTakeFirst();
    return row && recordOf(row);
  }

  async list(name?: string, limit = 100): Promise<ConfigRolloutRecord[]> {
    let q = this.s.db
      .selectFrom('config_rollouts')
      .selectAll()
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(limit);
    if (name !== undefined) q = q.where('name', '=', name);
    return (await q.execute()).map(recordOf);
  }

  phaseCounts(r: ConfigRolloutRecord): Promise<PhaseCounts[]> {
    return r.finalCounts ? Promise.resolve(r.finalCounts) : countsOf(this.s.db, r);
  }

  async claimRunning(owner: string, now: number, leaseMs: number): Promise<ConfigRolloutRecord[]> {
    const running = await this.s.db
      .selectFrom('config_rollouts')
      .select('id')
      .where('state', '=', 'running')
      .orderBy('created_at')
      .execute();
    const held: ConfigRolloutRecord[] = [];
    for (const { id } of running) {
      // Taken only when free, this replica's own, or lapsed: one replica steps a rollout at a time.
      const claimed = await this.s.db
        .updateTable('config_rollouts')
        .set({ lease_owner: owner, lease_until: now + leaseMs })
        .where('id', '=', id)
        .where('state', '=', 'running')
        .where((eb) =>
          eb.or([eb('lease_owner', 'is', null), eb('lease_owner', '=', owner), eb('lease_until', '<', now)]),
        )
        .executeTakeFirst();
      if (Number(claimed.numUpdatedRows) === 0) continue;
      const row = await this.s.db
        .selectFrom('config_rollouts')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst();
      if (row) held.push(recordOf(row));
    }
    return held;
  }

  async releaseLeases(owner: string): Promise<void> {
    await this.s.db
      .updateTable('config_rollouts')
      .set({ lease_owner: null, lease_until: null })
      .where('lease_owner', '=', owner)
      .execute();
  }

  async stepCounts(r: ConfigRolloutRecord, ctx: TimeContext): Promise<ConfigRolloutCounts | undefined> {
    const staged = await stagedRow(this.s.db, r.name);
    if (!staged || staged.version !== r.version) return undefined;
    const all = await progressOf(this.s.db, r.name, r.version);
    return {
      reach: await stagedReach(this.s.db, staged, ctx),
      released: all.released,
      counts: await progressOf(this.s.db, r.name, r.version, {
        from: r.phaseStarts[r.phaseStarts.length - 1]!,
      }),
    };
  }

  transition(
    id: string,
    change: ConfigRolloutChange,
    ctx: TimeContext,
    actor: string,
    leaseHolder?: string,
  ): Promise<ConfigRolloutRecord | undefined> {
    return this.s.db.transaction().execute(async (trx) => {
      const q = trx.selectFrom('config_rollouts').selectAll().where('id', '=', id);
      const row = await this.s.adapter.lockRowsForUpdate(q).executeTakeFirst();
      if (!row || !change.from.includes(row.state as ConfigRolloutState)) return undefined;
      if (leaseHolder !== undefined && row.lease_owner !== leaseHolder) return undefined;
      const starts = JSON.parse(row.phase_starts) as number[];
      const next: ConfigRolloutsTable = {
        ...row,
        state: change.state ?? row.state,
        phase: change.phase ?? row.phase,
        phase_starts: JSON.stringify(change.phase === undefined ? starts : [...starts, ctx.now]),
        reason: change.reason === undefined ? row.reason : change.reason,
        final_counts:
          change.final === undefined
            ? row.final_counts
            : JSON.stringify(change.final === 'now' ? await countsOf(trx, recordOf(row)) : change.final),
        updated_at: ctx.now,
      };
      await trx
        .updateTable('config_rollouts')
        .set({
          state: next.state,
          phase: next.phase,
          phase_starts: next.phase_starts,
          reason: next.reason,
          final_counts: next.final_counts,
          updated_at: next.updated_at,
        })
        .where('id', '=', id)
        .execute();
      const record = recordOf(next);
      await insertEvents(trx, [
        eventOf(record, change.event.type, ctx.now, actor, next.reason, {
          state: next.state,
          phase: next.phase + 1,
          ...change.event.data,
        }),
      ]);
      return record;
    });
  }
}

/** What each phase's devices reported: those released while it was the current phase. */
async function countsOf(db: Db, r: ConfigRolloutRecord): Promise<PhaseCounts[]> {
  const counts: PhaseCounts[] = [];
  for (let i = 0; i < r.phaseStarts.length; i++) {
    const window = { from: r.phaseStarts[i]!, to: r.phaseStarts[i + 1] };
    counts.push(await progressOf(db, r.name, r.version, window));
  }
  return counts;
}

function activeRow(db: Db, name: string): Promise<ConfigRolloutsTable | undefined> {
  return db
    .selectFrom('config_rollouts')
    .selectAll()
    .where('name', '=', name)
    .where('state', 'in', [...ACTIVE_CONFIG_ROLLOUT_STATES])
    .executeTakeFirst();
}
