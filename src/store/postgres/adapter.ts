/**
 * PostgreSQL's adapter: transactions run side by side (READ COMMITTED), so decisions take row locks, sweeps
 * pass over rows others hold, and rollout counts are counted from the rows (shared counter rows would make
 * replicas queue behind each other). With `native` (the default) heartbeats are written in a fixed number of
 * round trips a batch (heartbeats.ts) and a new rollout's rows travel as arrays (rollouts.ts); without it the store is the shared SQL alone, which the tests compare
 * the native path with.
 */
import { type Kysely, sql } from 'kysely';
import type { DialectAdapter, NativePaths } from '../adapter.js';
import type { Database } from '../schema.js';
import { PostgresHeartbeats } from './heartbeats.js';
import { postgresRolloutRows } from './rollouts.js';

export function postgresAdapter(db: Kysely<Database>, options: { native: boolean }): DialectAdapter {
  return {
    dialect: 'postgres',
    locksRows: true,
    supportsSkipLocked: true,
    keepsRolloutCounts: false,
    reportsShareTransaction: false,
    lockRowsForUpdate: (q) => q.forUpdate(),
    async lockTable(trx, table) {
      // SHARE ROW EXCLUSIVE conflicts with itself: a second writer waits for the first one's commit, readers don't.
      await sql`lock table ${sql.table(table)} in share row exclusive mode`.execute(trx);
    },
    async lockNamed(trx, name) {
      // A transaction-scoped advisory lock: released by the commit, so a crash cannot leave it held.
      await sql`select pg_advisory_xact_lock(hashtext(${name}))`.execute(trx);
    },
    stateInDeviceLookup: (u) => sql.ref(`${u}.state`),
    ...(options.native ? { native: nativePaths(db) } : {}),
  };
}

function nativePaths(db: Kysely<Database>): NativePaths {
  const heartbeats = new PostgresHeartbeats(db);
  return {
    recordHeartbeats: (batch, ctx) => heartbeats.record(batch, ctx),
    rolloutRows: postgresRolloutRows,
  };
}
