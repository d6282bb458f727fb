/** Chooses the adapter from a database location: a file path (SQLite) or a postgres:// URL. */
import { join } from 'node:path';
import { FleetError } from '../core/errors.js';
import { SqlStore } from './sql-store.js';
import { IN_MEMORY_LIMIT_BYTES, openSqliteStore, type SqliteOptions } from './sqlite/connect.js';
import type { Store } from './store.js';

export interface OpenStoreOptions extends SqliteOptions {
  /** `postgres://…` or a SQLite file path; defaults to `<dataDir>/fleetd.db`. */
  db?: string | undefined;
  dataDir: string;
}

export async function openStore(options: OpenStoreOptions): Promise<Store> {
  const location = options.db ?? join(options.dataDir, 'fleetd.db');
  if (/^postgres(ql)?:\/\//.test(location)) {
    const { openPostgresStore } = await import('./postgres/connect.js');
    return openPostgresStore(location);
  }
  if (location.includes('://')) {
    throw new FleetError('VALIDATION', `--db: "${location}" is neither a postgres:// URL nor a file path`);
  }
  return openSqliteStore(location, options);
}

/** `db: ':memory:'` keeps a SQLite database in memory, up to this size. */
export { IN_MEMORY_LIMIT_BYTES };

/** The size of a SQLite store's database (0 for PostgreSQL). */
export function databaseBytes(store: Store): number {
  return store instanceof SqlStore ? (store.adapter.sizeBytes?.() ?? 0) : 0;
}

/** The committed database of an in-memory store, to start another store from (`image` of SqliteOptions). */
export function memoryImage(store: Store): Promise<Buffer> {
  const image = store instanceof SqlStore ? store.adapter.image : undefined;
  if (!image) throw new Error('only a SQLite store has a database image');
  return image();
}
