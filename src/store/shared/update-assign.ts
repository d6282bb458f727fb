/**
 * An operator's writes of device updates: assigning a release to devices (superseding what they waited for)
 * and cancelling one update, each checked and written with its events in one transaction.
 */
import { randomBytes } from 'node:crypto';
import { FleetError } from '../../core/errors.js';
import { compareVersions } from '../../core/semver.js';
import { ACTIVE_STATES, checkTransition } from '../../core/update-state.js';
import type { SqlContext } from '../adapter.js';
import type { DeviceUpdatesTable } from '../schema.js';
import type { AssignResult, DeviceUpdate, NewEvent, TimeContext, UpdateAction } from '../store.js';
import { updateEvent } from '../update-effects.js';
import { lockDevices } from './device-locks.js';
import { type Db, insertEvents } from './events.js';
import { rowToRelease } from './releases.js';
import { transact } from './transact.js';
import { moveUpdate, moveUpdates } from './update-state-writer.js';
import { OPEN_UPDATE_STATES, rowToUpdate } from './updates.js';

export async function assign(
  s: SqlContext,
  deviceIds: string[],
  releaseId: string,
  options: { action: UpdateAction; rolloutId?: string | null },
  ctx: TimeContext,
  actor: string,
): Promise<AssignResult> {
  // Answered in the caller's order; the rows are locked in id order (device-locks.ts).
  const devices = [...new Set(deviceIds)];
  return transact(s.db, async (trx) => {
    if (s.adapter.locksRows) await lockDevices(trx, devices);
    const releaseRow = await trx
      .selectFrom('releases')
      .selectAll()
      .where('id', '=', releaseId)
      .where('deleted_at', 'is', null)
      .executeTakeFirst();
    if (!releaseRow) throw new FleetError('NOT_FOUND', `release ${releaseId} does not exist`);
    const release = rowToRelease(releaseRow);
    const result: AssignResult = { assigned: [], skipped: [] };
    const events: NewEvent[] = [];
    for (const deviceId of devices) {
      const device = await trx
        .selectFrom('devices')
        .select(['hardware_type', 'firmware_version', 'decommissioned_at', 'admission'])
        .where('id', '=', deviceId)
        .executeTakeFirst();
      const skip = (reason: string) => result.skipped.push({ deviceId, reason });
      if (!device) {
        skip('not registered');
        continue;
      }
      if (device.decommissioned_at !== null) {
        skip('decommissioned');
        continue;
      }
      if (device.admission !== 'accepted') {
        skip(`admission ${device.admission}: not accepted into the fleet`);
        continue;
      }
      if (device.hardware_type !== null && !release.hardware.includes(device.hardware_type)) {
        skip(`hardware ${device.hardware_type} is not one of ${release.hardware.join(', ')}`);
        continue;
      }
      if (device.firmware_version === release.version && options.action !== 'switch') {
        skip(`already runs ${release.version}`);
        continue;
      }
      const open = await trx
        .selectFrom('device_updates')
        .selectAll()
        .where('device_id', '=', deviceId)
        .where('state', 'in', OPEN_UPDATE_STATES)
        .execute();
      const busy = open.find((u) => ACTIVE_STATES.has(u.state));
      if (busy) {
        skip(`busy with update ${busy.id} (${busy.state})`);
        continue;
      }
      // A device holds one open update: what it waited for is superseded before the new one goes in.
      await moveUpdates(
        trx,
        open,
        'cancelled',
        { finished_at: ctx.now, error: 'superseded' },
        { at: ctx.now, actor, reason: 'superseded by a newer assignment' },
        events,
      );
      const row: DeviceUpdatesTable = {
        id: `upd_${randomBytes(9).toString('base64url')}`,
        device_id: deviceId,
        release_id: release.id,
        rollout_id: options.rolloutId ?? null,
        state: 'pending',
        action: options.action,
        last_seq: 0,
        progress: null,
        error: null,
        attempts: 0,
        from_version: device.firmware_version,
        created_at: ctx.now,
        updated_at: ctx.now,
        finished_at: null,
        phase: 0,
        purpose: 'update',
        not_before: null,
        granted_at: null,
        slot_key: null,
      };
      await trx.insertInto('device_updates').values(row).execute();
      const update = rowToUpdate(row);
      result.assigned.push(update);
      events.push(
        updateEvent(update, null, 'pending', ctx.now, actor, 'assigned', {
          release: `${release.name}@${release.version}`,
          downgrade:
            device.firmware_version !== null &&
            compareVersionsSafe(release.version, device.firmware_version) < 0,
        }),
      );
    }
    await insertEvents(trx, events);
    return result;
  });
}

export async function cancel(
  s: SqlContext,
  id: string,
  ctx: TimeContext,
  actor: string,
): Promise<DeviceUpdate> {
  return s.db.transaction().execute(async (trx: Db) => {
    const q = trx.selectFrom('device_updates').selectAll().where('id', '=', id);
    const row = await s.adapter.lockRowsForUpdate(q).executeTakeFirst();
    if (!row) throw new FleetError('NOT_FOUND', `update ${id} does not exist`);
    // Checked here too: a refused cancel is the caller's answer (409), not a write that found nothing.
    checkTransition(row.state, 'cancelled');
    await moveUpdate(
      trx,
      row,
      'cancelled',
      { finished_at: ctx.now },
      { at: ctx.now, actor, reason: 'cancelled by operator' },
    );
    return rowToUpdate({ ...row, state: 'cancelled', updated_at: ctx.now, finished_at: ctx.now });
  });
}

function compareVersionsSafe(a: string, b: string): number {
  try {
    return compareVersions(a, b);
  } catch {
    return 0;
  }
}
