/**
 * The plan query: the devices a rollout's filter selects, with what the planner needs to know of each (status,
 * zone, hardware, firmware, the slot tag's value, an update under way). New rollouts, dry runs and newcomers
 * joining a rollout all read through it; SQLite's native read runs the same query compiled (sqlite/rollouts.ts).
 */
import { sql } from 'kysely';
import { thresholdsOf } from '../../core/connectivity.js';
import { deviceStatus } from '../../core/device.js';
import type { FilterNode } from '../../core/filter/index.js';
import type { PlanDevice } from '../../core/rollout/plan.js';
import { ACTIVE_STATES } from '../../core/update-state.js';
import type { SqlContext } from '../adapter.js';
import type { PlanSelection, TimeContext } from '../store.js';
import type { Db } from './events.js';
import { compileFilter } from './filter-sql.js';

const ACTIVE = [...ACTIVE_STATES];

/**
 * Devices matching the filter, by id, with what the planner needs to know of each. Only devices in the fleet: one
 * waiting for approval, or rejected, is offered nothing.
 */
export function planQuery(
  s: SqlContext,
  db: Db,
  filter: FilterNode | undefined,
  tagKey: string | null,
  ctx: TimeContext,
) {
  return db
    .selectFrom('devices as devices')
    .select([
      'devices.id',
      'devices.last_seen',
      'devices.decommissioned_at',
      'devices.timezone',
      'devices.hardware_type',
      'devices.firmware_version',
      // Looked up only when the spec has a tag to count slots by.
      (eb) =>
        tagKey === null
          ? sql<string | null>`null`.as('tag_value')
          : eb
              .selectFrom('device_tags as t')
              .select('t.value')
              .whereRef('t.device_id', '=', 'devices.id')
              .where('t.key', '=', tagKey)
              .$asScalar()
              .$castTo<string | null>()
              .as('tag_value'),
      (eb) =>
        eb
          .selectFrom('device_updates as a')
          .select('a.id')
          .whereRef('a.device_id', '=', 'devices.id')
          .where(s.adapter.stateInDeviceLookup('a'), 'in', ACTIVE)
          .limit(1)
          .as('busy_with'),
      // Its connectivity class's thresholds (docs/connectivity.md): the row's own, null for the server-wide ones.
      'devices.offline_after_ms',
      'devices.abandoned_after_ms',
    ])
    .where((eb) => (filter ? compileFilter(eb, filter, ctx) : eb.lit(true)))
    .where('devices.decommissioned_at', 'is', null)
    .where('devices.admission', '=', 'accepted')
    .orderBy('devices.id');
}

export function toPlanDevice(
  r: {
    id: string;
    last_seen: number | null;
    decommissioned_at: number | null;
    timezone: string | null;
    hardware_type: string | null;
    firmware_version: string | null;
    tag_value: string | null;
    busy_with: string | null;
    offline_after_ms: number | string | null;
    abandoned_after_ms: number | string | null;
  },
  tagKey: string | null,
  ctx: TimeContext,
): PlanDevice {
  const offlineAfterMs = r.offline_after_ms === null ? null : Number(r.offline_after_ms);
  const own = thresholdsOf(
    {
      offlineAfterMs,
      abandonedAfterMs: r.abandoned_after_ms === null ? null : Number(r.abandoned_after_ms),
    },
    ctx.thresholds,
  );
  return {
    id: r.id,
    status: deviceStatus(
      r.last_seen === null ? null : Number(r.last_seen),
      r.decommissioned_at === null ? null : Number(r.decommissioned_at),
      ctx.now,
      own,
    ),
    lastSeen: r.last_seen === null ? null : Number(r.last_seen),
    timezone: r.timezone,
    hardwareType: r.hardware_type,
    firmwareVersion: r.firmware_version,
    tagValue: tagKey === null ? null : r.tag_value,
    busyWith: r.busy_with,
    offlineAfterMs,
  };
}

/**
 * The devices a new rollout plans over. `waiting`, when the read tells, holds those with an update that has not
 * started (the only ones that can have one to supersede); without it every target is checked.
 */
export async function readPlanDevices(
  s: SqlContext,
  db: Db,
  { filter, tagKey }: PlanSelection,
  ctx: TimeContext,
): Promise<{ devices: PlanDevice[]; waiting?: Set<string> }> {
  const rows = await planQuery(s, db, filter, tagKey, ctx).execute();
  return { devices: rows.map((r) => toPlanDevice(r, tagKey, ctx)) };
}

export async function newcomers(
  s: SqlContext,
  id: string,
  filter: FilterNode | undefined,
  tagKey: string | null,
  ctx: TimeContext,
): Promise<PlanDevice[]> {
  const rows = await planQuery(s, s.db, filter, tagKey, ctx)
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('device_updates as mine')
            .select('mine.id')
            .whereRef('mine.device_id', '=', 'devices.id')
            .where('mine.rollout_id', '=', id)
            .where('mine.state', '!=', 'skipped'),
        ),
      ),
    )
    .execute();
  return rows.map((r) => toPlanDevice(r, tagKey, ctx));
}
