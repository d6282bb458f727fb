/** Writing events inside the transaction that caused them (the outbox). */
import type { Kysely, Transaction } from 'kysely';
import type { Database } from './schema.js';
import type { NewEvent } from './store.js';

export type Db = Kysely<Database> | Transaction<Database>;

/** Rows per INSERT statement: keeps well under SQLite's bound-parameter limit. */
export const INSERT_CHUNK = 500;

export async function insertEvents(db: Db, events: NewEvent[]): Promise<void> {
  for (let i = 0; i < events.length; i += INSERT_CHUNK) {
    await db
      .insertInto('events')
      .values(
        events.slice(i, i + INSERT_CHUNK).map((e) => ({
          at: e.at,
          type: e.type,
          device_id: e.deviceId,
          rollout_id: e.rolloutId,
          actor: e.actor,
          reason: e.reason,
          data: JSON.stringify(e.data),
        })),
      )
      .execute();
  }
}
