/**
 * Every store backend, for tests that must behave the same on each (in the style of Kysely's own suite):
 *
 *   forEachBackend((backend) => {
 *     let store: SqlStore;
 *     beforeEach(async () => { store = await backend.open(); });
 *     it('…', async () => { … });
 *   });
 *
 * `sqlite`: a fresh database file in a temp dir, with SQLite's native paths. `sqlite-shared`: the same without
 * them, the shared SQL alone (so every suite checks both, and test/native-equivalence.test.ts compares them on
 * random inputs). `postgres`: with PostgreSQL's native paths, in a fresh schema in the database named by
 * FLEETD_TEST_PG (default postgres://postgres@127.0.0.1:5432/test), dropped after the suite, so concurrent
 * runs never see each other. An unreachable PostgreSQL fails the suite; FLEETD_TEST_PG=off skips it.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, onTestFinished } from 'vitest';
import type { Dialect } from '../../src/store/migrations.js';
import { openPostgresStore } from '../../src/store/postgres/connect.js';
import type { SqlStore } from '../../src/store/sql-store.js';
import { openSqliteStore } from '../../src/store/sqlite/connect.js';
import type { Release } from '../../src/store/store.js';
import { tempDir } from './processes.js';

export const DEFAULT_TEST_PG = 'postgres://postgres@127.0.0.1:5432/test';
const PG_SETTING = process.env.FLEETD_TEST_PG?.trim() || DEFAULT_TEST_PG;

/** A fresh store and how to remove every trace of it. */
interface Opened {
  store: SqlStore;
  /** Another handle on the same database (as another replica, or the same one after a restart, would open). */
  another(): Promise<SqlStore>;
  /** Closes the store (if the test did not) and deletes its data. */
  dispose(): Promise<void>;
}

/** A backend a store suite runs on: a database, and for SQLite whether its native paths are on. */
export type BackendName = 'sqlite' | 'sqlite-shared' | 'postgres' | 'postgres-shared';

export interface Backend {
  readonly name: BackendName;
  readonly dialect: Dialect;
  /** Why this backend does not run, when it does not. */
  readonly skipped?: string;
  create(): Promise<Opened>;
}

/** Closing twice must be harmless: tests may close a store themselves (to reopen it, say). */
function closeOnce(store: SqlStore): () => Promise<void> {
  let closed: Promise<void> | undefined;
  const close = store.close.bind(store);
  store.close = () => {
    closed ??= close();
    return closed;
  };
  return () => store.close();
}

function sqliteBackend(name: BackendName, native: boolean): Backend {
  return {
    name,
    dialect: 'sqlite',
    async create() {
      const dir = tempDir('fleetd-store-');
      const store = await openSqliteStore(join(dir, 'fleetd.db'), { cacheMiB: 16, native });
      const close = closeOnce(store);
      const others: SqlStore[] = [];
      return {
        store,
        async another() {
          const other = await openSqliteStore(join(dir, 'fleetd.db'), { cacheMiB: 16, native });
          others.push(other);
          closeOnce(other);
          return other;
        },
        async dispose() {
          await Promise.all(others.map((o) => o.close()));
          await close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  };
}

const sqlite = sqliteBackend('sqlite', true);
const sqliteShared = sqliteBackend('sqlite-shared', false);

function describeUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*)(:[^@/]*)?@/, '//$1@');
}

function unreachable(url: string, error: unknown): Error {
  const reason = error instanceof Error ? error.message || String(error) : String(error);
  return new Error(
    `PostgreSQL backend: cannot open ${describeUrl(url)} (${reason}). ` +
      'Start PostgreSQL, point FLEETD_TEST_PG at a reachable database, or set FLEETD_TEST_PG=off to skip it.',
    { cause: error },
  );
}

/** Checked once per test file: when the server is down every test fails at once, not after a timeout each. */
let reachable: Promise<void> | undefined;
function checkReachable(url: string): Promise<void> {
  reachable ??= (async () => {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
    try {
      await client.connect();
      await client.query('select 1');
    } catch (error) {
      throw unreachable(url, error);
    } finally {
      await client.end().catch(() => {});
    }
  })();
  return reachable;
}

function postgresBackend(name: BackendName, native: boolean): Backend {
  return {
    name,
    dialect: 'postgres',
    ...(PG_SETTING === 'off' ? { skipped: 'FLEETD_TEST_PG=off' } : {}),
    async create() {
      const url = PG_SETTING;
      await checkReachable(url);
      const schema = `fleetd_t_${randomBytes(6).toString('hex')}`;
      let store: SqlStore;
      try {
        store = await openPostgresStore(url, { schema, poolSize: 4, native });
      } catch (error) {
        throw unreachable(url, error);
      }
      const close = closeOnce(store);
      const others: SqlStore[] = [];
      return {
        store,
        async another() {
          const other = await openPostgresStore(url, { schema, poolSize: 4, native });
          others.push(other);
          closeOnce(other);
          return other;
        },
        async dispose() {
          await Promise.all(others.map((o) => o.close()));
          await close();
          const client = new pg.Client({ connectionString: url });
          await client.connect();
          try {
            await client.query(`drop schema if exists "${schema}" cascade`);
          } finally {
            await client.end();
          }
        },
      };
    },
  };
}

const postgres = postgresBackend('postgres', true);
/**
 * PostgreSQL with the shared SQL alone: not one of the suites' backends (every suite would take twice as long on
 * the slowest backend); test/postgres-native-equivalence.test.ts compares it with the native one.
 */
export const postgresBackends = { native: postgres, shared: postgresBackend('postgres-shared', false) };

/** The store suites' backends (forEachBackend); whole servers run on the two databases (forEachDatabase). */
export const backends: readonly Backend[] = [sqlite, sqliteShared, postgres];
const databases: readonly Backend[] = [sqlite, postgres];

export interface TestBackend {
  readonly name: BackendName;
  readonly dialect: Dialect;
  /**
   * A fresh, empty, migrated store. Closed and deleted when the test that opened it ends (when opened in a
   * test or beforeEach), or when the backend's suite ends (when opened in beforeAll).
   */
  open(): Promise<SqlStore>;
  /** A store and a second handle on the same database (a second replica, or a restart), disposed alike. */
  openPair(): Promise<[SqlStore, SqlStore]>;
  /** A store and `count - 1` more handles on the same database (replicas), disposed alike. */
  openMany(count: number): Promise<SqlStore[]>;
}

/** Runs the suite once per backend, inside `describe(<backend name>)`. */
export function forEachBackend(suite: (backend: TestBackend) => void): void {
  for (const backend of backends) {
    const run = backend.skipped === undefined ? describe : describe.skip;
    run(
      backend.skipped === undefined ? backend.name : `${backend.name} (skipped: ${backend.skipped})`,
      () => {
        const opened: Opened[] = [];
        afterAll(async () => {
          const results = await Promise.allSettled(opened.splice(0).map((o) => o.dispose()));
          const failed = results.find((r) => r.status === 'rejected');
          if (failed) throw failed.reason;
        });
        const create = async () => {
          const o = await backend.create();
          try {
            // Opened in a test or a beforeEach: gone when that test ends, so connections do not pile up.
            onTestFinished(() => o.dispose());
          } catch {
            // Opened in beforeAll: gone when the backend's suite ends.
            opened.push(o);
          }
          return o;
        };
        suite({
          name: backend.name,
          dialect: backend.dialect,
          async open() {
            return (await create()).store;
          },
          async openPair() {
            const o = await create();
            return [o.store, await o.another()];
          },
          async openMany(count: number) {
            const o = await create();
            const stores = [o.store];
            while (stores.length < count) stores.push(await o.another());
            return stores;
          },
        });
      },
    );
  }
}

/**
 * A database for a whole server (in-process or a real `fleetd server` process), given as its `--db` value:
 * undefined for SQLite (the server's own file in its data folder), or a postgres:// URL whose search_path is a
 * fresh schema, so servers opened on it (several replicas, or one after a restart) share it and nobody else.
 */
export interface TestDatabase {
  readonly name: Dialect;
  /**
   * A fresh, empty database. Dropped when the test that asked for it ends (in a test or beforeEach), or when
   * the backend's suite ends (in beforeAll). Close every server on it first.
   */
  fresh(): Promise<string | undefined>;
}

/** The URL of a new, empty schema in the PostgreSQL test database and how to drop it. */
export async function freshPostgresSchema(): Promise<{ url: string; drop(): Promise<void> }> {
  const base = PG_SETTING;
  await checkReachable(base);
  const schema = `fleetd_t_${randomBytes(6).toString('hex')}`;
  const run = async (statement: string) => {
    const client = new pg.Client({ connectionString: base });
    await client.connect();
    try {
      await client.query(statement);
    } finally {
      await client.end();
    }
  };
  await run(`create schema "${schema}"`);
  const url = new URL(base);
  // Commits need not wait for the WAL flush: these tests kill FleetD processes, never PostgreSQL, and a
  // commit is visible to every connection either way. Halves the engine suite's time.
  url.searchParams.set('options', `-c search_path=${schema} -c synchronous_commit=off`);
  return { url: url.toString(), drop: () => run(`drop schema if exists "${schema}" cascade`) };
}

/** Whether PostgreSQL tests run (FLEETD_TEST_PG is not `off`). */
export const postgresSkipped = postgres.skipped;

/** Runs the suite once per backend, inside `describe(<backend name>)`, with fresh databases for servers. */
export function forEachDatabase(suite: (database: TestDatabase) => void): void {
  for (const backend of databases) {
    const run = backend.skipped === undefined ? describe : describe.skip;
    run(
      backend.skipped === undefined ? backend.name : `${backend.name} (skipped: ${backend.skipped})`,
      () => {
        const drops: Array<() => Promise<void>> = [];
        afterAll(async () => {
          const results = await Promise.allSettled(drops.splice(0).map((drop) => drop()));
          const failed = results.find((r) => r.status === 'rejected');
          if (failed) throw failed.reason;
        });
        suite({
          name: backend.dialect,
          async fresh() {
            if (backend.name === 'sqlite') return undefined;
            const { url, drop } = await freshPostgresSchema();
            try {
              onTestFinished(() => drop());
            } catch {
              drops.push(drop);
            }
            return url;
          },
        });
      },
    );
  }
}

/** Where rollout counts are kept in a table moved by triggers (SQLite), it must always equal a count of the rows. */
export async function expectCountsInStep(store: SqlStore): Promise<void> {
  if (!store.adapter.keepsRolloutCounts) return;
  const kept = await store.db
    .selectFrom('rollout_counts')
    .select(['rollout_id', 'phase', 'purpose', 'state', 'n'])
    .where('n', '!=', 0)
    .orderBy('rollout_id')
    .orderBy('phase')
    .orderBy('purpose')
    .orderBy('state')
    .execute();
  const counted = await store.db
    .selectFrom('device_updates')
    .select(['rollout_id', 'phase', 'purpose', 'state', (eb) => eb.fn.countAll<number>().as('n')])
    .where('rollout_id', 'is not', null)
    .groupBy(['rollout_id', 'phase', 'purpose', 'state'])
    .orderBy('rollout_id')
    .orderBy('phase')
    .orderBy('purpose')
    .orderBy('state')
    .execute();
  expect(kept).toEqual(counted);
}

/** A firmware release of `fw` written straight to a store (no artifact behind it), for store-level tests. */
export function testRelease(id: string, version: string, createdAt: number, hardware = ['hw-a']): Release {
  return {
    id,
    name: 'fw',
    version,
    type: 'firmware',
    hardware,
    size: 1,
    sha256: '0'.repeat(64),
    manifest: '{}',
    signature: 'x',
    keyId: 'k',
    allowDowngrade: false,
    createdAt,
  };
}
