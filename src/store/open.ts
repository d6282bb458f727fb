/** Chooses the adapter from a database location: a file path (SQLite) or a postgres:// URL. */
import { join } from 'node:path';
import { FleetError } from '../core/errors.js';
import { openSqliteStore, type SqliteOptions } from './sqlite/connect.js';
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
