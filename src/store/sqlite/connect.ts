/** Opens the embedded SQLite database: one file, WAL journal, no service to run. */
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { migrateToLatest } from '../migrations.js';
import type { Database } from '../schema.js';
import { SqlStore } from '../sql-store.js';
import { sqliteAdapter } from './adapter.js';
import { Checkpointer } from './checkpointer.js';

export interface SqliteOptions {
  /**
   * `normal` (default): a commit survives the process being killed at any instant (kill -9, crash);
   * `full`: it also survives power loss, at the cost of an fsync per commit.
   */
  synchronous?: 'normal' | 'full';
  /** Page cache size (default 256 MiB: enough for about a million devices' hot pages). */
  cacheMiB?: number;
  /** With `:memory:`: start from this database image (`memoryImage()` of open.ts) instead of an empty database. */
  image?: Buffer | undefined;
  /**
   * Native fast paths (default true): heartbeats, the sweep, bulk registration, offers, reports and rollout
   * creation as prepared statements. `false` runs the shared SQL alone (the tests compare the two).
   */
  native?: boolean;
}

export async function openSqliteStore(file: string, options: SqliteOptions = {}): Promise<SqliteStore> {
  if (file !== ':memory:') {
    mkdirSync(dirname(file), { recursive: true });
    createPrivately(file);
  }
  const database = file === ':memory:' ? inMemory(options.image) : new BetterSqlite3(file);
  database.pragma('journal_mode = WAL');
  database.pragma(`synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
  database.pragma('foreign_keys = ON');
  // Heartbeats touch random devices: keep the hot pages in memory, and checkpoint (which fsyncs) rarely.
  // In memory a small cache does best: a page it misses is a copy from the image, not a read from disk, and a
  // commit's work grows with the cache (1 MiB measured fastest for the simulator's 100,000-device week).
  const cacheMiB = options.cacheMiB ?? (file === ':memory:' ? 1 : 256);
  database.pragma(`cache_size = -${cacheMiB * 1024}`);
  database.pragma(`mmap_size = ${1024 ** 3}`);
  // Checkpoints run in a worker thread (checkpointer.ts), never on the event loop; in memory there is no log.
  const checkpointer =
    file === ':memory:' ? undefined : new Checkpointer(file, (m) => console.error(`sqlite checkpoint: ${m}`));
  if (checkpointer) database.pragma('wal_autocheckpoint = 0');
  database.pragma(`journal_size_limit = ${64 * 1024 ** 2}`);
  database.pragma('busy_timeout = 5000');
  // LIKE must be case-sensitive, as it is in PostgreSQL, so filters give the same devices on both.
  database.pragma('case_sensitive_like = ON');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(database) }) });
  await migrateToLatest(db, 'sqlite');
  return new SqlStore(db, sqliteAdapter(db, database, checkpointer, { native: options.native ?? true }));
}

/**
 * The database holds webhook secrets and credential hashes: a new file is made 0600 (whatever the umask), and
 * SQLite gives its -wal and -shm files the database file's mode. An existing file keeps the mode it has.
 */
function createPrivately(file: string): void {
  try {
    closeSync(openSync(file, 'wx', 0o600));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
}

/** Largest database SQLite holds in memory (its compile-time limit for a deserialized image). */
export const IN_MEMORY_LIMIT_BYTES = 1024 ** 3;

/**
 * An in-memory database, opened as a deserialized image (an empty one, or `image`) rather than as `:memory:`:
 * in a `:memory:` database the page cache is the database, and a commit that allocates a page sweeps the
 * whole cache, so commits slow down as it grows (0.26 ms at 230 MB against 0.04 ms here, measured). Such an
 * image holds at most IN_MEMORY_LIMIT_BYTES.
 */
function inMemory(image: Buffer | undefined): BetterSqlite3.Database {
  return new BetterSqlite3(image ?? new BetterSqlite3(':memory:').serialize());
}

/** Statements kept prepared at most; queries with IN lists of many lengths would otherwise grow it forever. */
const STATEMENT_CACHE = 1_000;

/**
 * Kysely prepares every query it runs; preparing costs more than running a short indexed statement. The
 * same SQL text always gives the same statement, so it is kept and reused (nothing iterates statements,
 * which is the one use a shared statement would not allow).
 */
function withStatementCache(database: BetterSqlite3.Database) {
  const cache = new Map<string, BetterSqlite3.Statement>();
  return {
    prepare(sql: string): BetterSqlite3.Statement {
      let statement = cache.get(sql);
      if (!statement) {
        if (cache.size >= STATEMENT_CACHE) cache.delete(cache.keys().next().value!);
        statement = database.prepare(sql);
        cache.set(sql, statement);
      }
      return statement;
    },
    close(): void {
      database.close();
    },
  };
}

/** A SQLite store: the shared store on SQLite's adapter (its size and image are the adapter's). */
export type SqliteStore = SqlStore;
