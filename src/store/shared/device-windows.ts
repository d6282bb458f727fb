/**
 * A device's own maintenance windows (`device_windows`, one row per device holding its list) and its deferrals
 * of offered updates (`update_deferrals`, one row per update), in shared SQL. The rules are the core's
 * (core/rollout/device-windows.ts, core/rollout/deferral.ts); this reads and writes them, each change with its
 * event in the same transaction. The offer reads both for the devices asking (`offerExtras`).
 */

import { FleetError } from '../../core/errors.js';
import { type DeferralRecord, defer } from '../../core/rollout/deferral.js';
import type { ResolvedWindows } from '../../core/rollout/device-windows.js';
import type { WindowInput } from '../../core/rollout/spec.js';
import { windowDocument } from '../../core/rollout/spec-document.js';
import type { MaintenanceWindow } from '../../core/rollout/window.js';
import type { SqlContext } from '../adapter.js';
import type {
  Deferral,
  DeviceWindowStore,
  DeviceWindows,
  SharedWindows,
  WindowTarget,
} from '../device-window-store.js';
import type { DeviceWindowsTable, UpdateDeferralsTable } from '../schema.js';
import type { TimeContext } from '../store.js';
import { storedSpec } from '../stored-spec.js';
import { type Db, INSERT_CHUNK, insertEvents } from './events.js';
import { getShared, listShared, removeShared, resolveShared, setShared } from './shared-windows.js';
import { moveUpdate } from './update-state-writer.js';

/** States a device may defer an update in: not yet installing. */
const DEFERRABLE_STATES = ['pending', 'scheduled', 'notified', 'downloading'] as const;

const rowToWindows = (r: DeviceWindowsTable): DeviceWindows => ({
  deviceId: r.device_id,
  windows: JSON.parse(r.windows) as WindowInput[],
  source: r.source,
  updatedBy: r.updated_by,
  updatedAt: Number(r.updated_at),
});

const rowToDeferral = (r: UpdateDeferralsTable): Deferral => ({
  updateId: r.update_id,
  deviceId: r.device_id,
  rolloutId: r.rollout_id,
  count: Number(r.count),
  firstAt: Number(r.first_at),
  deferredUntil: Number(r.deferred_until),
  updatedAt: Number(r.updated_at),
});

export class SqlDeviceWindows implements DeviceWindowStore {
  constructor(private readonly s: SqlContext) {}

  async set(
    deviceId: string,
    windows: readonly MaintenanceWindow[],
    source: DeviceWindows['source'],
    actor: string,
    now: number,
  ): Promise<DeviceWindows> {
    const row: DeviceWindowsTable = {
      device_id: deviceId,
      windows: JSON.stringify(windows.map(windowDocument)),
      source,
      updated_by: actor,
      updated_at: now,
    };
    await this.s.db.transaction().execute(async (trx) => {
      await mustExist(trx, deviceId);
      await trx
        .insertInto('device_windows')
        .values(row)
        .onConflict((oc) =>
          oc.column('device_id').doUpdateSet({
            windows: row.windows,
            source,
            updated_by: actor,
            updated_at: now,
          }),
        )
        .execute();
      await insertEvents(trx, [
        {
          at: now,
          type: 'device.windows_set',
          deviceId,
          rolloutId: null,
          actor,
          reason: null,
          data: { source, windows: JSON.parse(row.windows) },
        },
      ]);
    });
    return rowToWindows(row);
  }

  async get(deviceId: string): Promise<DeviceWindows | undefined> {
    const row = await this.s.db
      .selectFrom('device_windows')
      .selectAll()
      .where('device_id', '=', deviceId)
      .executeTakeFirst();
    return row && rowToWindows(row);
  }

  async remove(deviceId: string, actor: string, now: number): Promise<boolean> {
    return this.s.db.transaction().execute(async (trx) => {
      const gone = await trx
        .deleteFrom('device_windows')
        .where('device_id', '=', deviceId)
        .executeTakeFirst();
      if (Number(gone.numDeletedRows) === 0) return false;
      await insertEvents(trx, [
        { at: now, type: 'device.windows_removed', deviceId, rolloutId: null, actor, reason: null, data: {} },
      ]);
      return true;
    });
  }

  async list(query: { after?: string; limit: number }): Promise<DeviceWindows[]> {
    let q = this.s.db.selectFrom('device_windows').selectAll().orderBy('device_id').limit(query.limit);
    if (query.after !== undefined) q = q.where('device_id', '>', query.after);
    return (await q.execute()).map(rowToWindows);
  }

  setShared(
    target: WindowTarget,
    windows: readonly MaintenanceWindow[],
    actor: string,
    now: number,
  ): Promise<SharedWindows> {
    return setShared(this.s.db, target, windows, actor, now);
  }

  getShared(target: WindowTarget): Promise<SharedWindows | undefined> {
    return getShared(this.s.db, target);
  }

  removeShared(target: WindowTarget, actor: string, now: number): Promise<boolean> {
    return removeShared(this.s.db, target, actor, now);
  }

  listShared(kind: WindowTarget['kind'], query: { after?: string; limit: number }): Promise<SharedWindows[]> {
    return listShared(this.s.db, kind, query);
  }

  resolve(deviceIds: readonly string[], ctx: TimeContext): Promise<Map<string, ResolvedWindows>> {
    return resolveShared(this.s.db, deviceIds, ctx);
  }

  async deferrals(deviceId: string): Promise<Deferral[]> {
    const rows = await this.s.db
      .selectFrom('update_deferrals')
      .selectAll()
      .where('device_id', '=', deviceId)
      .orderBy('first_at', 'desc')
      .limit(100)
      .execute();
    return rows.map(rowToDeferral);
  }

  async defer(deviceId: string, updateId: string, forMs: number, now: number): Promise<Deferral> {
    return this.s.db.transaction().execute(async (trx) => {
      const q = trx
        .selectFrom('device_updates')
        .select(['id', 'device_id', 'rollout_id', 'state'])
        .where('id', '=', updateId)
        .where('device_id', '=', deviceId);
      const u = await this.s.adapter.lockRowsForUpdate(q).executeTakeFirst();
      if (!u) throw new FleetError('NOT_FOUND', `update ${updateId} is not one of this device's updates`);
      if (!(DEFERRABLE_STATES as readonly string[]).includes(u.state)) {
        throw new FleetError('CONFLICT', `update ${updateId} is ${u.state}: too late to defer it`, {
          reason: 'not_deferrable',
          state: u.state,
        });
      }
      const spec =
        u.rollout_id === null
          ? null
          : await trx.selectFrom('rollouts').select('spec').where('id', '=', u.rollout_id).executeTakeFirst();
      const parsed = spec ? storedSpec(spec.spec) : null;
      const policy = parsed?.action === 'soft' ? parsed.deferral : null;
      const previous = await trx
        .selectFrom('update_deferrals')
        .selectAll()
        .where('update_id', '=', updateId)
        .executeTakeFirst();
      const next = defer(policy, previous ? rowToDeferral(previous) : null, forMs, now);
      const row: UpdateDeferralsTable = {
        update_id: updateId,
        device_id: deviceId,
        rollout_id: u.rollout_id,
        count: next.count,
        first_at: next.firstAt,
        deferred_until: next.deferredUntil,
        updated_at: now,
      };
      await trx
        .insertInto('update_deferrals')
        .values(row)
        .onConflict((oc) =>
          oc.column('update_id').doUpdateSet({
            count: row.count,
            deferred_until: row.deferred_until,
            updated_at: now,
          }),
        )
        .execute();
      const until = new Date(next.deferredUntil).toISOString();
      const cause = { at: now, actor: `device:${deviceId}`, reason: `deferred by the device until ${until}` };
      if (u.state === 'notified' || u.state === 'downloading') {
        // The slot goes back to the rollout; the offer holds the update until the deferral ends.
        await moveUpdate(trx, u, 'pending', { granted_at: null }, { ...cause, rule: 'defer' });
      }
      await insertEvents(trx, [
        {
          ...cause,
          type: 'update.deferred',
          deviceId,
          rolloutId: u.rollout_id,
          data: { update: updateId, count: next.count, until },
        },
      ]);
      return rowToDeferral(row);
    });
  }
}

/** What the offer needs beyond the update rows when a rollout honours device windows or deferrals. */
export interface OfferExtras {
  /** The windows each device takes (its own, its groups', its tag values'), read with `what.windows`. */
  windows: Map<string, ResolvedWindows>;
  deferrals: Map<string, DeferralRecord>;
}

export async function offerExtras(
  trx: Db,
  deviceIds: readonly string[],
  updateIds: readonly string[],
  what: { windows: TimeContext | null; deferrals: boolean },
): Promise<OfferExtras> {
  const extras: OfferExtras = {
    windows: what.windows === null ? new Map() : await resolveShared(trx, deviceIds, what.windows),
    deferrals: new Map(),
  };
  for (let i = 0; what.deferrals && i < updateIds.length; i += INSERT_CHUNK) {
    const rows = await trx
      .selectFrom('update_deferrals')
      .selectAll()
      .where('update_id', 'in', updateIds.slice(i, i + INSERT_CHUNK))
      .execute();
    for (const r of rows) extras.deferrals.set(r.update_id, rowToDeferral(r));
  }
  return extras;
}

async function mustExist(trx: Db, deviceId: string): Promise<void> {
  const d = await trx
    .selectFrom('devices')
    .select(['id', 'decommissioned_at'])
    .where('id', '=', deviceId)
    .executeTakeFirst();
  if (!d) throw new FleetError('DEVICE_NOT_FOUND', `device ${deviceId} is not registered`);
  if (d.decommissioned_at !== null) {
    throw new FleetError('DEVICE_DECOMMISSIONED', `device ${deviceId} is decommissioned`);
  }
}
