/**
 * A full disk is not an internal error: the operator can fix it, so it is named (507 STORAGE_FULL) rather
 * than hidden behind a 500. The blob store meets it as ENOSPC (or EDQUOT, a quota), SQLite as SQLITE_FULL,
 * PostgreSQL as SQLSTATE 53100 (disk_full) on its own server's disk.
 */
import { FleetError } from '../core/errors.js';

const DATA_FOLDER_FULL = new Set(['ENOSPC', 'EDQUOT', 'SQLITE_FULL']);
const DATABASE_FULL = '53100';

/** STORAGE_FULL for an error caused by a full disk (its own code or any cause's), else undefined. */
export function storageFull(error: unknown): FleetError | undefined {
  for (let e = error, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as Error).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code !== 'string') continue;
    if (DATA_FOLDER_FULL.has(code)) {
      return new FleetError('STORAGE_FULL', "the data folder's disk is full: free space there, then retry");
    }
    if (code === DATABASE_FULL) {
      return new FleetError(
        'STORAGE_FULL',
        "the database server's disk is full: free space there, then retry",
      );
    }
  }
  return undefined;
}
