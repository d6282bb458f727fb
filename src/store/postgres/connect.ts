/** Opens a PostgreSQL database: a pg connection pool under Kysely, migrated to the latest schema. */
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { FleetError } from '../../core/errors.js';
import { migrateToLatest } from '../migrations.js';
import type { Database } from '../schema.js';
import { SqlStore } from '../sql-store.js';
import { postgresAdapter } from './adapter.js';

export interface PostgresOptions {
  /**
   * The schema that holds FleetD's tables (created when missing) instead of the server's default: several
   * FleetD instances, or test runs, can then share one database. Lower-case letters, digits and `_`.
   */
  schema?: string;
  /** Connections in the pool (default 10). */
  poolSize?: number;
  /**
   * Native fast paths (default true): heartbeats written in a fixed number of round trips a batch. `false` runs
   * the shared SQL alone (the tests compare the two).
   */
  native?: boolean;
}

const INT8_OID = 20;
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

// Every time is ms since the epoch, far below 2^53: bigint columns (and count(*), sum() of integers) are read
// as numbers, as SQLite returns them. Scoped to this pool, not set globally on the pg module.
const types: pg.CustomTypesConfig = {
  getTypeParser: (oid, format) =>
    oid === INT8_OID && format !== 'binary' ? Number : pg.types.getTypeParser(oid, format),
};

export async function openPostgresStore(url: string, options: PostgresOptions = {}): Promise<SqlStore> {
  const { schema } = options;
  if (schema !== undefined && !SCHEMA_NAME.test(schema)) {
    throw new FleetError('VALIDATION', `schema "${schema}" must be lower-case letters, digits and _`);
  }
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize ?? 10,
    types,
    // Set at connection start-up, so no query on any connection can run against another schema.
    ...(schema === undefined ? {} : { options: `-c search_path=${schema}` }),
  });
  // An idle connection that breaks (server restart) must not crash the process; the next query reconnects.
  pool.on('error', (error) => console.error(`postgres: ${error.message}`));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  try {
    if (schema !== undefined) await sql`create schema if not exists ${sql.id(schema)}`.execute(db);
    const current = await sql<{ name: string | null }>`select current_schema() as name`.execute(db);
    const name = current.rows[0]?.name;
    if (!name) throw new FleetError('VALIDATION', `${redact(url)}: no schema on the search_path to use`);
    await migrateToLatest(db, 'postgres', { schema: name });
  } catch (error) {
    await db.destroy();
    throw error;
  }
  return new SqlStore(db, postgresAdapter(db, { native: options.native ?? true }));
}

function redact(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//');
}
