/** PostgreSQL adapter: arrives with the scale-out work; the port is already shaped for it. */
import { FleetError } from '../../core/errors.js';
import type { SqlStore } from '../sql-store.js';

export async function openPostgresStore(_url: string): Promise<SqlStore> {
  throw new FleetError(
    'VALIDATION',
    'PostgreSQL support is not available in this version; use a SQLite file',
  );
}
