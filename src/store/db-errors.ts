/**
 * What a database's errors mean to FleetD, decided in one place: which ones ask for the transaction to be run
 * again, and which ones refuse a value the caller sent (so they answer 4xx, not 500).
 */
import { FleetError } from '../core/errors.js';

/** SQLSTATEs with which PostgreSQL asks the client to run the transaction again. */
const RETRY_STATES = new Set([
  '40P01', // deadlock detected: this transaction was chosen to let the other one through
  '40001', // serialization failure
]);

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Whether the database aborted the transaction and asks for it to be run again. */
export function asksForRetry(error: unknown): boolean {
  const code = codeOf(error);
  return code !== undefined && RETRY_STATES.has(code);
}

/**
 * The unique index device_updates_one_open refused a second open update of one device (migration 0014).
 * PostgreSQL names the index; SQLite names the column, and device_id is unique nowhere else.
 */
export function secondOpenUpdate(error: unknown): boolean {
  const code = codeOf(error);
  if (code === '23505') {
    return (error as { constraint?: unknown }).constraint === 'device_updates_one_open';
  }
  return (
    code === 'SQLITE_CONSTRAINT_UNIQUE' &&
    error instanceof Error &&
    error.message.includes('device_updates.device_id')
  );
}

/** A second open update the writer could not resolve by superseding, as the caller should see it. */
export function asOpenUpdateConflict(error: unknown): unknown {
  if (!secondOpenUpdate(error)) return error;
  return new FleetError(
    'OPEN_UPDATE_EXISTS',
    'another update of the device was written at the same time and is still open; try again',
    undefined,
    { cause: error },
  );
}

/**
 * PostgreSQL's class 22 "data exception" (a NUL byte in text, a number beyond its column, text that is not
 * UTF-8) and SQLite's SQLITE_TOOBIG are a value the database cannot hold: the caller's data, not a fault.
 */
function refusesValue(error: unknown): boolean {
  const code = codeOf(error);
  return code !== undefined && (/^22[0-9A-Z]{3}$/.test(code) || code === 'SQLITE_TOOBIG');
}

/** The error as the caller should see it: a VALIDATION error naming `what` when the database refused a value. */
export function asCallerError(error: unknown, what: string): unknown {
  if (!refusesValue(error)) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return new FleetError(
    'VALIDATION',
    `${what} holds a value the database cannot store (${reason})`,
    undefined,
    {
      cause: error,
    },
  );
}

/** A primary-key or unique violation, as either database reports it. */
export function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}
