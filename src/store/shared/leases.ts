/**
 * Rollout leases: each open rollout has one replica driving it at a time (see engine/rollout-engine.ts). A claim
 * keeps, takes and hands back leases so the replica holds its fair share among the live ones (replicas.ts,
 * core/rollout/lease-share.ts); a release gives back a replica's own. Every decision on a rollout takes its lock
 * here (`lockRollout`), which is also where a lease lost is found out.
 */
import type { ExpressionBuilder, Selectable } from 'kysely';
import { FleetError } from '../../core/errors.js';
import { type LeaseCandidate, leaseShare } from '../../core/rollout/lease-share.js';
import { OPEN_ROLLOUT_STATES } from '../../core/rollout/rollout-state.js';
import type { DialectAdapter, SqlContext } from '../adapter.js';
import type { Database, RolloutsTable } from '../schema.js';
import type { DecisionContext } from '../store.js';
import { type Db, INSERT_CHUNK } from './events.js';
import { countOtherLiveReplicas } from './replicas.js';

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

/** Open rollouts `owner` may hold: free, already its own, or whose lease ran out. */
const claimable = (owner: string, now: number) => (eb: ExpressionBuilder<Database, 'rollouts'>) =>
  eb.and([
    eb('state', 'in', [...OPEN_ROLLOUT_STATES]),
    eb.or([eb('lease_owner', 'is', null), eb('lease_owner', '=', owner), eb('lease_until', '<', now)]),
  ]);

export async function claimLeases(
  s: SqlContext,
  owner: string,
  now: number,
  ttlMs: number,
): Promise<string[]> {
  const held = !s.adapter.locksRows
    ? // Where writers run one at a time (SQLite) each write below checks again that the rollout is still
      // claimable, in the statement that takes it: a claim that read a stale count takes too many at worst,
      // and hands them back on its next tick.
      await claimShare(s.db, owner, now, ttlMs, false)
    : await s.db.transaction().execute((trx) => claimShare(trx, owner, now, ttlMs, true));
  held.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
  return held.map((r) => r.id);
}

async function claimShare(
  db: Db,
  owner: string,
  now: number,
  ttlMs: number,
  lock: boolean,
): Promise<LeaseCandidate[]> {
  const others = await countOtherLiveReplicas(db, owner, now);
  const open = await db
    .selectFrom('rollouts')
    .select((eb) => eb.fn.countAll<number | string>().as('n'))
    .where('state', 'in', [...OPEN_ROLLOUT_STATES])
    .executeTakeFirstOrThrow();
  // The rows are locked first, in id order, so two claimers never deadlock. A row another replica claimed
  // meanwhile is checked again once its lock is released (READ COMMITTED re-reads the newest version of a row
  // it locks) and no longer qualifies: one replica only comes out holding it.
  const candidates = db
    .selectFrom('rollouts')
    .select(['id', 'created_at', 'lease_owner'])
    .where(claimable(owner, now))
    .orderBy('id');
  const rows = await (lock ? candidates.forUpdate() : candidates).execute();
  const candidate = (r: (typeof rows)[number]) => ({ id: r.id, createdAt: Number(r.created_at) });
  const decision = leaseShare({
    open: Number(open.n),
    live: others + 1,
    mine: rows.filter((r) => r.lease_owner === owner).map(candidate),
    free: rows.filter((r) => r.lease_owner !== owner).map(candidate),
  });
  const hold = [...decision.keep, ...decision.take].map((r) => r.id).sort();
  const held: LeaseCandidate[] = [];
  for (let i = 0; i < hold.length; i += INSERT_CHUNK) {
    const got = await db
      .updateTable('rollouts')
      .set({ lease_owner: owner, lease_until: now + ttlMs })
      .where(claimable(owner, now))
      .where('id', 'in', hold.slice(i, i + INSERT_CHUNK))
      .returning(['id', 'created_at'])
      .execute();
    for (const r of got) held.push({ id: r.id, createdAt: Number(r.created_at) });
  }
  const handBack = decision.handBack.map((r) => r.id).sort();
  for (let i = 0; i < handBack.length; i += INSERT_CHUNK) {
    await db
      .updateTable('rollouts')
      .set({ lease_owner: null, lease_until: null })
      .where('lease_owner', '=', owner)
      .where('id', 'in', handBack.slice(i, i + INSERT_CHUNK))
      .execute();
  }
  return held;
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
