/** Events written in bulk by the native SQLite paths: 10,000 to a statement, in the order given. */
import type { Database as Sqlite, Statement } from 'better-sqlite3';
import type { NewEvent } from '../store.js';

const CHUNK = 10_000;

export class SqliteEvents {
  private readonly insert: Statement<[string]>;

  constructor(sqlite: Sqlite) {
    // The array's order is the events' order in the log.
    this.insert = sqlite.prepare(
      `INSERT INTO events (at, type, device_id, rollout_id, actor, reason, data)
       SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6
       FROM jsonb_each(jsonb(?)) ORDER BY key`,
    );
  }

  write(events: readonly NewEvent[]): void {
    for (let i = 0; i < events.length; i += CHUNK) {
      const rows = events
        .slice(i, i + CHUNK)
        .map((e) => [e.at, e.type, e.deviceId, e.rolloutId, e.actor, e.reason, JSON.stringify(e.data)]);
      this.insert.run(JSON.stringify(rows));
    }
  }
}
