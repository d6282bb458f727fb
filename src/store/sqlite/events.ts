/** Appending events with a prepared statement, inside whatever transaction the caller holds (the outbox). */
import type { Database as Sqlite, Statement } from 'better-sqlite3';
import type { NewEvent } from '../store.js';

export class SqliteEvents {
  private readonly insert: Statement;

  constructor(sqlite: Sqlite) {
    this.insert = sqlite.prepare(
      'INSERT INTO events (at, type, device_id, rollout_id, actor, reason, data) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
  }

  write(events: readonly NewEvent[]): void {
    for (const e of events) {
      this.insert.run(e.at, e.type, e.deviceId, e.rolloutId, e.actor, e.reason, JSON.stringify(e.data));
    }
  }
}
