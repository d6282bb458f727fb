/**
 * Rollout creation for SQLite: a rollout over a million devices writes a million device updates, and the
 * portable path pays query building and an await per chunk of 500. Here the rows go through one prepared
 * statement, run synchronously inside the store's own transaction (Kysely holds the connection; these
 * calls use the same better-sqlite3 handle, so they are part of it). Everything else is the portable code.
 */
import type { Database as Sqlite, Statement } from 'better-sqlite3';
import type { Kysely } from 'kysely';
import type { PlannedTarget } from '../../core/rollout/plan.js';
import type { Database } from '../schema.js';
import type { Db } from '../sql-events.js';
import { SqlRollouts, WAITING, type WaitingRow } from '../sql-rollouts.js';

/** The columns of device_updates, in the order insertTargets binds them. */
const COLUMNS = [
  'id',
  'device_id',
  'release_id',
  'rollout_id',
  'state',
  'action',
  'last_seq',
  'progress',
  'error',
  'attempts',
  'from_version',
  'created_at',
  'updated_at',
  'finished_at',
  'phase',
  'purpose',
  'not_before',
  'granted_at',
  'slot_key',
] as const;

export class SqliteRollouts extends SqlRollouts {
  private readonly insertUpdate: Statement;
  private readonly selectWaiting: Statement<unknown[], WaitingRow>;

  constructor(db: Kysely<Database>, sqlite: Sqlite) {
    super(db, 'sqlite');
    this.insertUpdate = sqlite.prepare(
      `INSERT INTO device_updates (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map(() => '?').join(', ')})`,
    );
    // The new rollout's rows are written first: its non-skipped devices are exactly the devices to check.
    this.selectWaiting = sqlite.prepare(
      `SELECT o.id, o.device_id, o.rollout_id, o.state FROM device_updates o
       WHERE o.device_id IN (SELECT n.device_id FROM device_updates n WHERE n.rollout_id = ? AND n.state != 'skipped')
         AND o.state IN (${WAITING.map(() => '?').join(', ')})
         AND (o.rollout_id IS NULL OR o.rollout_id != ?)`,
    );
  }

  protected override async insertTargets(
    _trx: Db,
    rollout: { id: string; releaseId: string; action: string },
    targets: PlannedTarget[],
    now: number,
  ): Promise<void> {
    for (const row of this.targetRows(rollout, targets, now)) {
      this.insertUpdate.run(COLUMNS.map((c) => row[c] ?? null));
    }
  }

  protected override async waitingElsewhere(
    _trx: Db,
    rolloutId: string,
    deviceIds: string[],
  ): Promise<WaitingRow[]> {
    if (deviceIds.length === 0) return [];
    return this.selectWaiting.all(rolloutId, ...WAITING, rolloutId);
  }
}
