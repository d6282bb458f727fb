/**
 * Rollout leases: each open rollout has one replica driving it at a time (see engine/leases). A claim takes the
 * free or expired leases; a release gives back a replica's own. Every decision on a rollout takes its lock
 * here (`lockRollout`), which is also where a lease lost is found out.
 */
import type { ExpressionBuilder, Selectable } from 'kysely';
import { FleetError } from '../../core/errors.js';
import { OPEN_ROLLOUT_STATES } from '../../core/rollout/rollout-state.js';
import type { DialectAdapter, SqlContext } from '../adapter.js';
import type { Database, RolloutsTable } from '../schema.js';
import type { DecisionContext } from '../store.js';
import { type Db, INSERT_CHUNK } from './events.js';

/**
 * Serializes decisions on one rollout across replicas (where every write transaction runs alone, reading the
 * row is enough), and fences the engine: a replica taking the lease over must write `lease_owner` under this
 * same lock, so a holder that still finds its name here is the only one deciding until the transaction commits.
 */
export async function lockRollout(
  trx: Db,
  adapter: DialectAdapter,
  id: string,
  ctx?: DecisionContext,
): Promise<Selectable<RolloutsTable>> {
  const q = trx.selectFrom('rollouts').selectAll().where('id', '=', id);
  const row = await adapter.lockRowsForUpdate(q).executeTakeFirst();
  if (!row) throw new FleetError('NOT_FOUND', `rollout ${id} does not exist`);
  if (ctx?.leaseHolder !== undefined && row.lease_owner !== ctx.leaseHolder) {
    throw new FleetError(
      'LEASE_LOST',
      `rollout ${id} is driven by ${row.lease_owner ?? 'no replica'} now, not ${ctx.leaseHolder}`,
      { owner: row.lease_owner },
    );
  }
  return row;
}

export async function claimLeases(
  s: SqlContext,
  owner: string,
  now: number,
  ttlMs: number,
): Promise<string[]> {
  const free = (eb: ExpressionBuilder<Database, 'rollouts'>) =>
    eb.and([
      eb('state', 'in', [...OPEN_ROLLOUT_STATES]),
      eb.or([eb('lease_owner', 'is', null), eb('lease_owner', '=', owner), eb('lease_until', '<', now)]),
    ]);
  const rows = !s.adapter.locksRows
    ? // One statement: where writers run one at a time (SQLite), the check and the write are one step.
      await s.db
        .updateTable('rollouts')
        .set({ lease_owner: owner, lease_until: now + ttlMs })
        .where(free)
        .returning(['id', 'created_at'])
        .execute()
    : await s.db.transaction().execute(async (trx) => {
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

export async function releaseLeases(s: SqlContext, owner: string): Promise<void> {
  const release = (db: Db, ids?: string[]) => {
    let q = db
      .updateTable('rollouts')
      .set({ lease_owner: null, lease_until: null })
      .where('lease_owner', '=', owner);
    if (ids) q = q.where('id', 'in', ids);
    return q.execute();
  };
  if (!s.adapter.locksRows) {
    await release(s.db);
    return;
  }
  await s.db.transaction().execute(async (trx) => {
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
