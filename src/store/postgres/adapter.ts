/**
 * PostgreSQL's adapter: transactions run side by side (READ COMMITTED), so decisions take row locks, sweeps
 * pass over rows others hold, and rollout counts are counted from the rows (shared counter rows would make
 * replicas queue behind each other). No native paths: everything is the shared SQL.
 */
import { sql } from 'kysely';
import type { DialectAdapter } from '../adapter.js';

export const postgresAdapter: DialectAdapter = {
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
  stateInDeviceLookup: (u) => sql.ref(`${u}.state`),
};
