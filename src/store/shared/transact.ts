/**
 * A transaction run again when the database asks for it. PostgreSQL aborts one of two transactions that wait
 * for each other's row locks (40P01) or cannot be serialized (40001): the other one went through, and running
 * the aborted one again is what the error means. SQLite serializes writers and never asks. Bounded: a
 * transaction that keeps losing fails with its last error.
 *
 * A second open update of one device (the unique index of migration 0014) is a race lost the same way: another
 * replica committed an open update for a device after this transaction looked, so this one's insert collides.
 * Every writer that inserts an open update supersedes the device's open one first, so running it again reads
 * the winner and supersedes it (or leaves the device out, where the winner is at work). One that keeps
 * colliding answers OPEN_UPDATE_EXISTS (409), never a database error.
 */

import { setTimeout as sleep } from 'node:timers/promises';
import type { Kysely, Transaction } from 'kysely';
import { asksForRetry, asOpenUpdateConflict, secondOpenUpdate } from '../db-errors.js';
import type { Database } from '../schema.js';

/** Runs of one transaction at most (the first included). */
export const MAX_TRANSACTION_RUNS = 5;

/** `random` (uniform in [0, 1)) spreads the waits between runs; tests pass a seeded one (core/random.ts). */
export async function transact<T>(
  db: Kysely<Database>,
  work: (trx: Transaction<Database>) => Promise<T>,
  random: () => number = Math.random,
): Promise<T> {
  for (let run = 1; ; run++) {
    try {
      return await db.transaction().execute(work);
    } catch (error) {
      const lostRace = asksForRetry(error) || secondOpenUpdate(error);
      if (run >= MAX_TRANSACTION_RUNS || !lostRace) throw asOpenUpdateConflict(error);
      // A few milliseconds at random, growing, so the two losers of a deadlock do not meet again at once.
      await sleep(random() * 5 * run);
    }
  }
}
