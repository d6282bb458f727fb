/**
 * Rollout creation for SQLite: a rollout over a million devices reads a million devices and writes a million
 * device updates in one transaction, and may supersede as many. The plan's query is the shared one, compiled
 * by Kysely and run here as a native statement that returns plain arrays; rows go in, and superseded updates
 * are cancelled, 10,000 to a statement. These run synchronously on the same better-sqlite3 handle while Kysely
 * holds the connection (inside the store's transaction, or `connection()` for a dry run), so they are part of
 * it and nothing interleaves. These are the RolloutRows of adapter.ts; the shared ones are shared/rollout-targets.ts.
 */
import type { Database as Sqlite, Statement } from 'better-sqlite3';
import type { PlanDevice, PlannedTarget } from '../../core/rollout/plan.js';
import { movableFrom } from '../../core/update-state.js';
import type { RolloutRows, SqlContext } from '../adapter.js';
import type { Db } from '../shared/events.js';
import { planQuery, toPlanDevice } from '../shared/plan-query.js';
import { inWriteOrder, supersededEvents, WAITING, type WaitingRow } from '../shared/rollout-targets.js';
import type { PlanSelection, TimeContext, UpdateAction } from '../store.js';
import { reserveUpdateIds } from '../update-ids.js';
import type { SqliteEvents } from './events.js';

/** Rows per statement: one JSON array each, so a million rows are a hundred statements. */
const CHUNK = 10_000;

/** A row of the plan's query, in its column order, and whether the device has an update waiting. */
type PlanRow = [
  id: string,
  last_seen: number | null,
  decommissioned_at: number | null,
  timezone: string | null,
  hardware_type: string | null,
  firmware_version: string | null,
  tag_value: string | null,
  busy_with: string | null,
  offline_after_ms: number | null,
  abandoned_after_ms: number | null,
  waiting: 0 | 1,
];

export class SqliteRollouts implements RolloutRows {
  private readonly insertUpdates: Statement;
  private readonly selectWaiting: Statement<{ rolloutId: string; devices: string }, WaitingRow>;
  private readonly cancelUpdates: Statement<{ ids: string; reason: string; now: number }>;

  constructor(
    private readonly s: SqlContext,
    private readonly sqlite: Sqlite,
    private readonly events: SqliteEvents,
  ) {
    // The per-device columns come as a JSON array of arrays, unpacked by SQLite without a statement execution per
    // row (measured faster than a prepared INSERT per row); as JSONB, a row's values are read without parsing
    // its text again.
    this.insertUpdates = sqlite.prepare(
      `INSERT INTO device_updates (id, device_id, release_id, rollout_id, state, action, last_seq, progress, error,
         attempts, from_version, created_at, updated_at, finished_at, phase, purpose, not_before, granted_at, slot_key)
       SELECT printf('upd_%014x%s', @first + key, @origin), value ->> 0, @releaseId, @rolloutId, value ->> 1, @action,
         0, NULL, value ->> 2, 0, value ->> 3, @now, @now, value ->> 4, value ->> 5, 'update', NULL, NULL, value ->> 6
       FROM jsonb_each(jsonb(@rows))`,
    );
    this.selectWaiting = sqlite.prepare(
      `SELECT o.id, o.device_id, o.rollout_id, o.state
       FROM jsonb_each(jsonb(@devices)) AS d JOIN device_updates AS o ON o.device_id = d.value
       WHERE o.state IN (${WAITING.map((s) => `'${s}'`).join(', ')}) AND (o.rollout_id IS NULL OR o.rollout_id != @rolloutId)`,
    );
    // The move of shared/update-state-writer.ts's moveUpdates, its from-states from the same table.
    this.cancelUpdates = sqlite.prepare(
      `UPDATE device_updates SET state = 'cancelled', error = @reason, updated_at = @now, finished_at = @now
       WHERE id IN (SELECT value FROM json_each(@ids))
         AND state IN (${movableFrom('cancelled', WAITING)
           .map((s) => `'${s}'`)
           .join(', ')})`,
    );
  }

  /** The plan's query with one more column: whether the device has an update waiting to start. */
  private readNative({ filter, tagKey }: PlanSelection, ctx: TimeContext) {
    const query = planQuery(this.s, this.s.db, filter, tagKey, ctx)
      .select(({ exists, selectFrom }) =>
        exists(
          selectFrom('device_updates as w')
            .select('w.id')
            .whereRef('w.device_id', '=', 'devices.id')
            .where(this.s.adapter.stateInDeviceLookup('w'), 'in', WAITING),
        ).as('waiting'),
      )
      .compile();
    const devices: PlanDevice[] = [];
    const waiting = new Set<string>();
    const statement = this.sqlite.prepare<unknown[], PlanRow>(query.sql).raw(true);
    for (const row of statement.iterate(...query.parameters)) {
      const r = {
        id: row[0],
        last_seen: row[1],
        decommissioned_at: row[2],
        timezone: row[3],
        hardware_type: row[4],
        firmware_version: row[5],
        tag_value: row[6],
        busy_with: row[7],
        offline_after_ms: row[8],
        abandoned_after_ms: row[9],
      };
      devices.push(toPlanDevice(r, tagKey, ctx));
      if (row[10] === 1) waiting.add(r.id);
    }
    return { devices, waiting };
  }

  /** Inside the create transaction: the same read tells which targets have an update to supersede. */
  async readPlanDevices(_db: Db, selection: PlanSelection, ctx: TimeContext) {
    return this.readNative(selection, ctx);
  }

  async planDevices(selection: PlanSelection, ctx: TimeContext): Promise<PlanDevice[]> {
    // A dry run holds the connection too: run between another transaction's statements, it would read them.
    return this.s.db.connection().execute(async () => this.readNative(selection, ctx).devices);
  }

  async insertTargets(
    _trx: Db,
    rollout: { id: string; releaseId: string; action: UpdateAction },
    targets: PlannedTarget[],
    now: number,
  ): Promise<void> {
    // Ids as newUpdateId makes them, written by SQLite from a range reserved for the whole rollout.
    const { first, origin } = reserveUpdateIds(targets.length);
    let next = first;
    for (const group of inWriteOrder(targets)) {
      for (let i = 0; i < group.length; i += CHUNK) {
        const chunk = group.slice(i, i + CHUNK);
        const values = chunk.map((t) => [
          t.deviceId,
          t.state,
          t.reason,
          t.fromVersion,
          t.state === 'skipped' ? now : null,
          t.phase,
          t.slotKey,
        ]);
        this.insertUpdates.run({
          first: next,
          origin,
          releaseId: rollout.releaseId,
          rolloutId: rollout.id,
          action: rollout.action,
          now,
          rows: JSON.stringify(values),
        });
        next += chunk.length;
      }
    }
  }

  /** The shared supersede, 10,000 devices to a statement: a rollout over a whole fleet may supersede another's. */
  async supersede(_trx: Db, rolloutId: string, deviceIds: string[], now: number): Promise<void> {
    const reason = `superseded by rollout ${rolloutId}`;
    for (let i = 0; i < deviceIds.length; i += CHUNK) {
      const devices = JSON.stringify(deviceIds.slice(i, i + CHUNK));
      const old = this.selectWaiting.all({ rolloutId, devices });
      this.cancelUpdates.run({ ids: JSON.stringify(old.map((o) => o.id)), reason, now });
      this.events.write(supersededEvents(old, rolloutId, now));
    }
  }
}
