/**
 * The rows the offer and reports read and write, in shared SQL (the UpdateRows of adapter.ts). SQLite's native
 * ones (sqlite/updates.ts) do the same steps as prepared statements.
 */
import { versionKey } from '../../core/semver.js';
import type { SqlContext, UpdateRows } from '../adapter.js';
import type { DeviceUpdatesTable } from '../schema.js';
import type { NewEvent, TimeContext } from '../store.js';
import { firmwareChangedEvent, type ReportRow } from '../update-effects.js';
import { type Db, insertEvents } from './events.js';
import { updatesInProgress } from './rollout-counts.js';
import { type MoveColumns, moveUpdate, writeReported } from './update-state-writer.js';
import { OFFERABLE_STATES, type OfferedRollout, type OfferRow, offeredRollout } from './updates.js';

export function sharedUpdateRows(s: SqlContext): UpdateRows {
  const writeEvents = (trx: Db, events: NewEvent[]) => insertEvents(trx, events);
  return {
    offerRows(deviceIds: string[]): Promise<OfferRow[]> {
      return s.db
        .selectFrom('device_updates as u')
        .innerJoin('releases as r', 'r.id', 'u.release_id')
        .innerJoin('devices as d', 'd.id', 'u.device_id')
        .selectAll('u')
        .select([
          'r.version',
          'd.timezone as device_timezone',
          'd.firmware_version as device_firmware',
          'r.size as release_size',
          'd.tags as device_tags',
          'd.metrics as device_metrics',
        ])
        .where('u.device_id', 'in', deviceIds)
        .where('u.state', 'in', OFFERABLE_STATES)
        .orderBy('u.created_at')
        .execute();
    },

    /**
     * pending → `to` with its event, only by the first writer: another replica or batch may have moved it
     * meanwhile. True when this call moved it. Notified starts the in-progress timeout; skipped is final.
     */
    async movePending(
      trx: Db,
      r: { id: string; device_id: string; rollout_id: string | null },
      to: 'notified' | 'skipped',
      ctx: TimeContext,
      reason: string,
    ): Promise<boolean> {
      const set: MoveColumns =
        to === 'notified' ? { granted_at: ctx.now } : { error: reason, finished_at: ctx.now };
      return moveUpdate(trx, { ...r, state: 'pending' }, to, set, { at: ctx.now, actor: null, reason });
    },

    writeEvents,

    /** Locked where rows are locked; where every write transaction runs alone, reading it is enough. */
    async lockedRollout(trx: Db, rolloutId: string): Promise<OfferedRollout | undefined> {
      const q = trx
        .selectFrom('rollouts')
        .select(['state', 'current_phase', 'started_at', 'spec'])
        .where('id', '=', rolloutId);
      const row = await s.adapter.lockRowsForUpdate(q).executeTakeFirst();
      return row && offeredRollout(row);
    },

    inProgress(trx: Db, rolloutId: string): Promise<number> {
      return updatesInProgress(trx, s.adapter, rolloutId);
    },

    reportRow(trx: Db, deviceId: string, updateId: string): Promise<ReportRow | undefined> {
      const q = trx
        .selectFrom('device_updates')
        .select(['id', 'rollout_id', 'release_id', 'state', 'action', 'last_seq', 'progress', 'attempts'])
        .where('id', '=', updateId)
        .where('device_id', '=', deviceId);
      return s.adapter.lockRowsForUpdate(q).executeTakeFirst();
    },

    writeReport(trx: Db, row: ReportRow, set: Partial<DeviceUpdatesTable>): Promise<void> {
      return writeReported(trx, row, set);
    },

    /**
     * A device that reports an install succeeded runs that release now: the registry says so at once rather
     * than at its next heartbeat, so a rollout created meanwhile knows what it would roll back to.
     */
    async recordRunningVersion(trx: Db, deviceId: string, releaseId: string, at: number): Promise<void> {
      const release = await trx
        .selectFrom('releases')
        .select('version')
        .where('id', '=', releaseId)
        .executeTakeFirst();
      const device = await trx
        .selectFrom('devices')
        .select('firmware_version')
        .where('id', '=', deviceId)
        .executeTakeFirst();
      if (!release || !device || device.firmware_version === release.version) return;
      await trx
        .updateTable('devices')
        .set({ firmware_version: release.version, firmware_key: versionKey(release.version), updated_at: at })
        .where('id', '=', deviceId)
        .execute();
      await writeEvents(trx, [firmwareChangedEvent(deviceId, device.firmware_version, release.version, at)]);
    },
  };
}
