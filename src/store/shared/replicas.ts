/**
 * The replicas driving rollouts: each announces itself on every engine tick with an expiry (its lease time), so
 * one that dies drops out of the count when its rollout leases run out. The claim in leases.ts counts the live
 * ones to size each replica's share.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../schema.js';
import type { LiveReplica, ReplicaStore } from '../store.js';
import type { Db } from './events.js';

/** Live replicas at `now` other than `self` (a row is live up to and including its expiry, as a lease is). */
export async function countOtherLiveReplicas(db: Db, self: string, now: number): Promise<number> {
  const row = await db
    .selectFrom('replicas')
    .select((eb) => eb.fn.countAll<number | string>().as('n'))
    .where('expires_at', '>=', now)
    .where('name', '<>', self)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export class SqlReplicas implements ReplicaStore {
  constructor(private readonly db: Kysely<Database>) {}

  async announce(name: string, now: number, ttlMs: number): Promise<void> {
    await this.db
      .insertInto('replicas')
      .values({ name, started_at: now, expires_at: now + ttlMs })
      .onConflict((oc) => oc.column('name').doUpdateSet({ expires_at: now + ttlMs }))
      .execute();
    // Names are new on every start (host:pid:random): rows of replicas long gone would pile up otherwise.
    await this.db
      .deleteFrom('replicas')
      .where('expires_at', '<', now - ttlMs)
      .execute();
  }

  async leave(name: string): Promise<void> {
    await this.db.deleteFrom('replicas').where('name', '=', name).execute();
  }

  async live(now: number): Promise<LiveReplica[]> {
    const rows = await this.db
      .selectFrom('replicas')
      .selectAll()
      .where('expires_at', '>=', now)
      .orderBy('name')
      .execute();
    return rows.map((r) => ({
      name: r.name,
      startedAt: Number(r.started_at),
      expiresAt: Number(r.expires_at),
    }));
  }
}
