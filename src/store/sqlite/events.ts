/**
 * Appending events with prepared statements, inside whatever transaction the caller holds (the outbox): one
 * row a statement for the few events of a report or heartbeat, 10,000 to a statement (as one JSON array) for
 * the bulk writes of imports and rollouts. Either way in the order given, which is their order in the log.
 */
import type { Database as Sqlite, Statement } from 'better-sqlite3';
import type { NewEvent } from '../store.js';

const CHUNK = 10_000;
/** Up to this many events, one statement each costs less than building and unpacking a JSON array. */
const FEW = 16;

export class SqliteEvents {
  private readonly insertOne: Statement;
  private readonly insertMany: Statement<[string]>;

  constructor(sqlite: Sqlite) {
    this.insertOne = sqlite.prepare(
      'INSERT INTO events (at, type, device_id, rollout_id, actor, reason, data) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    this.insertMany = sqlite.prepare(
      `INSERT INTO events (at, type, device_id, rollout_id, actor, reason, data)
       SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6
       FROM jsonb_each(jsonb(?)) ORDER BY key`,
    );
  }

  write(events: readonly NewEvent[]): void {
    if (events.length <= FEW) {
      for (const e of events) {
        this.insertOne.run(e.at, e.type, e.deviceId, e.rolloutId, e.actor, e.reason, JSON.stringify(e.data));
      }
      return;
    }
    for (let i = 0; i < events.length; i += CHUNK) {
      const rows = events
        .slice(i, i + CHUNK)
        .map((e) => [e.at, e.type, e.deviceId, e.rolloutId, e.actor, e.reason, JSON.stringify(e.data)]);
      this.insertMany.run(JSON.stringify(rows));
    }
  }
}
