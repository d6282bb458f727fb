/**
 * The heartbeat write for SQLite, as synchronous prepared statements run in one transaction while the
 * connection is held exclusively: the hottest path in FleetD pays no query building and no awaits per row.
 * Decisions come from heartbeat-effects.ts, exactly as in the portable implementation.
 */
import type { Database as Sqlite, Statement } from 'better-sqlite3';
import { type HeartbeatRow, heartbeatEffects } from '../heartbeat-effects.js';
import { OFFERABLE_STATES } from '../sql-updates.js';
import type { HeartbeatOutcome, PresentedHeartbeat, TimeContext } from '../store.js';
import type { SqliteEvents } from './events.js';

export class SqliteHeartbeats {
  private readonly selectRow: Statement<[string], HeartbeatRow>;
  private readonly hasOpen: Statement<string[], { one: number }>;
  /** UPDATE statements by the set of columns they write: a handful of shapes in practice. */
  private readonly updates = new Map<string, Statement>();

  constructor(
    private readonly sqlite: Sqlite,
    private readonly events: SqliteEvents,
  ) {
    this.selectRow = sqlite.prepare(
      'SELECT credential_hash, recorded_status, last_seen, decommissioned_at, firmware_version FROM devices WHERE id = ?',
    );
    const states = OFFERABLE_STATES.map(() => '?').join(', ');
    this.hasOpen = sqlite.prepare(
      `SELECT 1 AS one FROM device_updates WHERE device_id = ? AND state IN (${states}) LIMIT 1`,
    );
  }

  private update(columns: string[]): Statement {
    const key = columns.join(',');
    let statement = this.updates.get(key);
    if (!statement) {
      statement = this.sqlite.prepare(
        `UPDATE devices SET ${columns.map((c) => `${c} = ?`).join(', ')} WHERE id = ?`,
      );
      this.updates.set(key, statement);
    }
    return statement;
  }

  record(batch: PresentedHeartbeat[], ctx: TimeContext): HeartbeatOutcome[] {
    return this.sqlite
      .transaction(
        () =>
          batch.map((presented) => {
            const id = presented.heartbeat.deviceId;
            const row = this.selectRow.get(id);
            const open = row !== undefined && this.hasOpen.get(id, ...OFFERABLE_STATES) !== undefined;
            const effects = heartbeatEffects(row, presented, open, ctx);
            if (effects.outcome.ok) {
              const columns = Object.keys(effects.set);
              this.update(columns).run(...Object.values(effects.set), id);
              this.events.write(effects.events);
            }
            return effects.outcome;
          }),
        // IMMEDIATE: take the write lock up front rather than upgrading a read, which can fail as busy.
      )
      .immediate();
  }
}
