/** The event log: writing events inside the transaction that caused them (the outbox), and reading them. */
import { type Kysely, type SqlBool, sql, type Transaction } from 'kysely';
import type { Database } from '../schema.js';
import type { EventQuery, NewEvent, StoredEvent } from '../store.js';

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

/** Store.appendEvents: in one transaction, so a batch is in the log whole or not at all. */
export async function appendEvents(db: Kysely<Database>, events: NewEvent[]): Promise<void> {
  await db.transaction().execute((trx) => insertEvents(trx, events));
}

export async function lastEventId(db: Db): Promise<number> {
  const row = await db
    .selectFrom('events')
    .select((eb) => eb.fn.max('id').as('id'))
    .executeTakeFirst();
  return Number(row?.id ?? 0);
}

export async function listEvents(db: Db, query: EventQuery): Promise<StoredEvent[]> {
  let q = db.selectFrom('events').selectAll();
  if (query.after !== undefined) q = q.where('id', '>', query.after);
  if (query.before !== undefined) q = q.where('id', '<', query.before);
  if (query.deviceId !== undefined) q = q.where('device_id', '=', query.deviceId);
  if (query.rolloutId !== undefined) q = q.where('rollout_id', '=', query.rolloutId);
  if (query.typePrefix !== undefined) {
    // A literal prefix: its `%`, `_` and `\` escaped, with the escape character named, as SQLite has none
    // by default (PostgreSQL's is `\`).
    const pattern = `${query.typePrefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    q = q.where((eb) => sql<SqlBool>`${eb.ref('type')} like ${pattern} escape '\\'`);
  }
  const rows = await q
    .orderBy('id', query.newestFirst ? 'desc' : 'asc')
    .limit(query.limit)
    .execute();
  return rows.map((r) => ({
    id: Number(r.id),
    at: Number(r.at),
    type: r.type,
    deviceId: r.device_id,
    rolloutId: r.rollout_id,
    actor: r.actor,
    reason: r.reason,
    data: JSON.parse(r.data) as Record<string, unknown>,
  }));
}
