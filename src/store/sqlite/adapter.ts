/**
 * SQLite's adapter: one writer at a time (every write transaction runs alone), so the shared code needs no row
 * locks; rollout counts are kept by triggers (migration 0007); a batch of reports shares one transaction (group
 * commit). With `native` (the default) the busiest operations run as prepared better-sqlite3 statements on the
 * connection Kysely holds: heartbeats, the sweep, bulk registration, the offer and reports, rollout creation.
 * Without it the store is the shared SQL alone, which the tests compare the native paths with.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { type Kysely, sql } from 'kysely';
import type { DialectAdapter, NativePaths } from '../adapter.js';
import { asCallerError } from '../db-errors.js';
import type { Database } from '../schema.js';
import { heartbeatsNamed } from '../shared/heartbeats.js';
import type { Checkpointer } from './checkpointer.js';
import { SqliteDevices } from './devices.js';
import { SqliteEvents } from './events.js';
import { SqliteHeartbeats } from './heartbeats.js';
import { SqliteRollouts } from './rollouts.js';
import { SqliteSweep } from './sweep.js';
import { SqliteUpdates } from './updates.js';

export function sqliteAdapter(
  db: Kysely<Database>,
  sqlite: BetterSqlite3.Database,
  checkpointer: Checkpointer | undefined,
  options: { native: boolean },
): DialectAdapter {
  return {
    dialect: 'sqlite',
    locksRows: false,
    supportsSkipLocked: false,
    keepsRolloutCounts: true,
    reportsShareTransaction: true,
    lockRowsForUpdate: (q) => q,
    async lockTable() {
      // Writers queue for the one write lock anyway.
    },
    async lockNamed() {
      // Writers queue for the one write lock anyway.
    },
    // `+state`: SQLite then seeks the device in (device_id, state) once and checks the state of its few updates
    // there, instead of seeking once per state asked for (about 30 % of the plan's read on a million devices
    // with an update each).
    stateInDeviceLookup: (u) => sql<string>`+${sql.ref(`${u}.state`)}`,
    async close() {
      await checkpointer?.stop();
    },
    sizeBytes() {
      const pages = sqlite.pragma('page_count', { simple: true }) as number;
      return pages * (sqlite.pragma('page_size', { simple: true }) as number);
    },
    image() {
      return db.connection().execute(async () => sqlite.serialize());
    },
    ...(options.native ? { native: nativePaths(db, sqlite) } : {}),
  };
}

/**
 * Each runs synchronously while Kysely's connection is held (`connection()`), which keeps any other query and
 * its transaction off it meanwhile; or inside the store's own transaction (updates, rollouts).
 */
function nativePaths(db: Kysely<Database>, sqlite: BetterSqlite3.Database): NativePaths {
  const events = new SqliteEvents(sqlite);
  const heartbeats = new SqliteHeartbeats(sqlite, events);
  const devices = new SqliteDevices(sqlite, events);
  const sweeps = new SqliteSweep(sqlite, events);
  return {
    recordHeartbeats: (batch, ctx) =>
      db
        .connection()
        .execute(async () => heartbeats.record(batch, ctx))
        .catch((error: unknown) => {
          throw asCallerError(error, heartbeatsNamed(batch));
        }),
    sweepStatuses: (ctx, since) => db.connection().execute(async () => sweeps.sweep(ctx, since)),
    importDevices: (records, ctx, actor) =>
      db.connection().execute(async () => devices.import(records, ctx, actor)),
    setCredentials: (credentials, ctx, actor) =>
      db.connection().execute(async () => devices.setCredentials(credentials, ctx, actor)),
    updateRows: (s) => new SqliteUpdates(s.db, sqlite, events),
    rolloutRows: (s) => new SqliteRollouts(s, sqlite, events),
  };
}
