/**
 * The heartbeat write for SQLite, as synchronous prepared statements run in one transaction while the
 * connection is held exclusively: the hottest path in FleetD pays no query building and no awaits per row.
 * Decisions come from heartbeat-effects.ts, exactly as in the shared implementation (shared/heartbeats.ts).
 */
import type { Database as Sqlite, Statement } from 'better-sqlite3';
import { type HeartbeatRow, heartbeatEffects } from '../heartbeat-effects.js';
import { OFFERABLE_STATES } from '../shared/updates.js';
import type { HeartbeatOutcome, PresentedHeartbeat, TimeContext } from '../store.js';
import type { SqliteEvents } from './events.js';
import { RowUpdates } from './row-updates.js';

export class SqliteHeartbeats {
  private readonly selectRow: Statement<
    [string | null, string],
    HeartbeatRow & { has_open: number; certificate_live: number }
  >;
  private readonly writes: RowUpdates;

  constructor(
    private readonly sqlite: Sqlite,
    private readonly events: SqliteEvents,
  ) {
    // The device row, whether it has an update to be offered and whether the client certificate presented (if
    // any) is one of its live ones, in one statement.
    const states = OFFERABLE_STATES.map((s) => `'${s}'`).join(', ');
    this.selectRow = sqlite.prepare(
      `SELECT credential_hash, recorded_status, last_seen, decommissioned_at, firmware_version, admission,
         heartbeat_interval_ms, offline_after_ms, abandoned_after_ms,
         EXISTS (SELECT 1 FROM device_updates u WHERE u.device_id = d.id AND u.state IN (${states})) AS has_open,
         EXISTS (SELECT 1 FROM device_certificates c
                 WHERE c.fingerprint = ? AND c.device_id = d.id AND c.revoked_at IS NULL) AS certificate_live
       FROM devices d WHERE d.id = ?`,
    );
    this.writes = new RowUpdates(sqlite, 'devices');
  }

  record(batch: PresentedHeartbeat[], ctx: TimeContext): HeartbeatOutcome[] {
    return this.sqlite
      .transaction(
        () =>
          batch.map((presented) => {
            const id = presented.heartbeat.deviceId;
            const row = this.selectRow.get(presented.certificateFingerprint ?? null, id);
            const live = row?.certificate_live === 1;
            const effects = heartbeatEffects(row, presented, row?.has_open === 1, ctx, live);
            if (effects.outcome.ok) {
              this.writes.run(id, effects.set);
              this.events.write(effects.events);
            }
            return effects.outcome;
          }),
        // IMMEDIATE: take the write lock up front rather than upgrading a read, which can fail as busy.
      )
      .immediate();
  }
}
