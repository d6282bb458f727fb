/**
 * Device updates on SQLite: the offer made on heartbeats and the reports devices send are FleetD's busiest
 * writes after heartbeats, so their reads and writes are prepared statements run synchronously inside the
 * store's own transaction (Kysely holds the connection; these calls use the same better-sqlite3 handle).
 * The decisions and the transactions are the shared code's (shared/update-offer.ts, shared/update-reports.ts,
 * update-effects.ts); these are the UpdateRows of adapter.ts, step for step those of shared/update-rows.ts.
 */
import type { Database as Sqlite, Statement } from 'better-sqlite3';
import type { Kysely } from 'kysely';
import type { RolloutState } from '../../core/rollout/rollout-state.js';
import { versionKey } from '../../core/semver.js';
import { ACTIVE_STATES, checkTransition, movableFrom } from '../../core/update-state.js';
import type { UpdateRows } from '../adapter.js';
import type { Database, DeviceUpdatesTable } from '../schema.js';
import type { Db } from '../shared/events.js';
import { OFFERABLE_STATES, type OfferRow, offeredRollout } from '../shared/updates.js';
import type { NewEvent, TimeContext } from '../store.js';
import { firmwareChangedEvent, type ReportRow, updateEvent } from '../update-effects.js';
import type { SqliteEvents } from './events.js';
import { RowUpdates } from './row-updates.js';

const list = (values: readonly string[]) => values.map((v) => `'${v}'`).join(', ');

export class SqliteUpdates implements UpdateRows {
  private readonly selectOffers: Statement<[string], OfferRow>;
  private readonly grant: Statement;
  private readonly skip: Statement;
  private readonly selectRollout: Statement<
    [string],
    { state: RolloutState; current_phase: number; started_at: number | null; spec: string }
  >;
  private readonly countInProgress: Statement<[string], { n: number | null }>;
  private readonly selectReported: Statement<[string, string], ReportRow>;
  private readonly selectFirmware: Statement<[string], { firmware_version: string | null }>;
  private readonly selectVersion: Statement<[string], { version: string }>;
  private readonly setFirmware: Statement;
  private readonly reportWrites: RowUpdates;

  constructor(
    private readonly db: Kysely<Database>,
    sqlite: Sqlite,
    private readonly events: SqliteEvents,
  ) {
    // The devices come as one JSON array: one statement whatever the batch size (an IN list would be
    // prepared again for every length).
    this.selectOffers = sqlite.prepare(
      `SELECT u.*, r.version, d.timezone AS device_timezone, d.firmware_version AS device_firmware,
         r.size AS release_size, d.tags AS device_tags, d.metrics AS device_metrics
       FROM device_updates u JOIN releases r ON r.id = u.release_id JOIN devices d ON d.id = u.device_id
       WHERE u.device_id IN (SELECT value FROM json_each(?)) AND u.state IN (${list(OFFERABLE_STATES)})
       ORDER BY u.created_at`,
    );
    // The moves of shared/update-state-writer.ts, their from-states from the same table.
    this.grant = sqlite.prepare(
      `UPDATE device_updates SET state = 'notified', granted_at = @now, updated_at = @now
       WHERE id = @id AND state IN (${list(movableFrom('notified', ['pending']))})`,
    );
    this.skip = sqlite.prepare(
      `UPDATE device_updates SET state = 'skipped', error = @reason, finished_at = @now, updated_at = @now
       WHERE id = @id AND state IN (${list(movableFrom('skipped', ['pending']))})`,
    );
    this.selectRollout = sqlite.prepare(
      'SELECT state, current_phase, started_at, spec FROM rollouts WHERE id = ?',
    );
    this.countInProgress = sqlite.prepare(
      `SELECT sum(n) AS n FROM rollout_counts
       WHERE rollout_id = ? AND purpose = 'update' AND state IN (${list([...ACTIVE_STATES])})`,
    );
    this.selectReported = sqlite.prepare(
      `SELECT id, rollout_id, release_id, state, action, last_seq, progress, attempts
       FROM device_updates WHERE id = ? AND device_id = ?`,
    );
    this.selectFirmware = sqlite.prepare('SELECT firmware_version FROM devices WHERE id = ?');
    this.selectVersion = sqlite.prepare('SELECT version FROM releases WHERE id = ?');
    this.reportWrites = new RowUpdates(sqlite, 'device_updates');
    this.setFirmware = sqlite.prepare(
      'UPDATE devices SET firmware_version = ?, firmware_key = ?, updated_at = ? WHERE id = ?',
    );
  }

  offerRows(deviceIds: string[]): Promise<OfferRow[]> {
    // Outside a transaction: holding the connection keeps another transaction's uncommitted rows out of sight.
    return this.db.connection().execute(async () => this.selectOffers.all(JSON.stringify(deviceIds)));
  }

  async movePending(
    _trx: Db,
    r: { id: string; device_id: string; rollout_id: string | null },
    to: 'notified' | 'skipped',
    ctx: TimeContext,
    reason: string,
  ): Promise<boolean> {
    const moved =
      to === 'notified'
        ? this.grant.run({ id: r.id, now: ctx.now })
        : this.skip.run({ id: r.id, now: ctx.now, reason });
    if (moved.changes !== 1) return false;
    const update = { id: r.id, deviceId: r.device_id, rolloutId: r.rollout_id };
    this.events.write([updateEvent(update, 'pending', to, ctx.now, null, reason)]);
    return true;
  }

  async writeEvents(_trx: Db, events: NewEvent[]): Promise<void> {
    this.events.write(events);
  }

  async lockedRollout(_trx: Db, rolloutId: string) {
    const row = this.selectRollout.get(rolloutId);
    return row && offeredRollout(row);
  }

  async inProgress(_trx: Db, rolloutId: string): Promise<number> {
    return this.countInProgress.get(rolloutId)?.n ?? 0;
  }

  async reportRow(_trx: Db, deviceId: string, updateId: string) {
    return this.selectReported.get(updateId, deviceId);
  }

  async writeReport(_trx: Db, row: ReportRow, set: Partial<DeviceUpdatesTable>): Promise<void> {
    if (set.state !== undefined) checkTransition(row.state, set.state);
    this.reportWrites.run(row.id, set, row.state);
  }

  async recordRunningVersion(_trx: Db, deviceId: string, releaseId: string, at: number): Promise<void> {
    const version = this.selectVersion.get(releaseId)?.version;
    const device = this.selectFirmware.get(deviceId);
    if (version === undefined || !device || device.firmware_version === version) return;
    this.setFirmware.run(version, versionKey(version), at, deviceId);
    this.events.write([firmwareChangedEvent(deviceId, device.firmware_version, version, at)]);
  }
}
