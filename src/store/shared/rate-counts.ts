/**
 * Abuse-limit counts shared by the replicas: each adds what it counted since it last did, and reads back the
 * total of every replica (server/abuse/shared-rate-counts.ts). One statement per chunk of keys, so a sync costs
 * a round trip, not one per key.
 */
import { sql } from 'kysely';
import type { RateCountAdd, RateCountStore } from '../rate-count-store.js';
import type { Db } from './events.js';

const CHUNK = 500;

export class SqlRateCounts implements RateCountStore {
  constructor(private readonly db: Db) {}

  async add(adds: RateCountAdd[]): Promise<Map<string, number>> {
    const totals = new Map<string, number>();
    for (let i = 0; i < adds.length; i += CHUNK) {
      const rows = await this.db
        .insertInto('rate_counts')
        .values(
          adds.slice(i, i + CHUNK).map((a) => ({
            key: a.key,
            window_start: a.windowStart,
            count: a.add,
            expires_at: a.expiresAt,
          })),
        )
        .onConflict((oc) =>
          oc.columns(['key', 'window_start']).doUpdateSet({ count: sql`rate_counts.count + excluded.count` }),
        )
        .returning(['key', 'window_start', 'count'])
        .execute();
      for (const r of rows) totals.set(`${r.key}@${Number(r.window_start)}`, Number(r.count));
    }
    return totals;
  }

  async prune(now: number): Promise<number> {
    const result = await this.db.deleteFrom('rate_counts').where('expires_at', '<', now).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
