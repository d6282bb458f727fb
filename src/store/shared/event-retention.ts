/**
 * Event retention over Kysely, in SQL both databases share (docs/operations.md, "Event retention").
 *
 * Events are appended in time order, so their ids follow their times: a time is found as an id by a binary
 * search over the primary key (about 25 look-ups for 10⁷ events) instead of an index on `at` that every event
 * written would have to move. Every delete is bounded by a row count, so on SQLite, where a write holds the
 * one write lock, a batch keeps heartbeats waiting for milliseconds only.
 *
 * A device's `device.status` events go only once its day is summed up in device_status_days (core
 * status-days.ts): `event_retention.days_until` says up to where; status history before it is read from the
 * days. Events of a rollout still open stay: its timeline and failures are read from them.
 */
import type { Expression, ExpressionBuilder, Kysely, SqlBool } from 'kysely';
import type { StatusChange } from '../../core/rollout/presence.js';
import { OPEN_ROLLOUT_STATES } from '../../core/rollout/rollout-state.js';
import { changesFromDays, dayOf, type StatusDay, summarizeDay } from '../../core/rollout/status-days.js';
import { DAY_MS } from '../../core/rollout/zone.js';
import type { Database } from '../schema.js';
import type { EventRetentionStore, PrunePlan, RetentionPolicy, StatusHistory } from '../store.js';
import { type Db, INSERT_CHUNK } from './events.js';

/** A change of status is told from its data without parsing it: `{"from":…,"to":…}`. */
const cameOnline = (data: string) => data.includes('"to":"online"');
const wasOnline = (data: string) => data.includes('"from":"online"');
/** Margin around a day's id range: events written by replicas whose clocks differ a little. */
const CLOCK_SLACK_MS = 60_000;

/** The smallest event id whose event is at or after `t` (one past the newest when none is). */
async function firstIdAt(db: Db, t: number): Promise<number> {
  const ends = await db
    .selectFrom('events')
    .select((eb) => [eb.fn.min('id').as('lo'), eb.fn.max('id').as('hi')])
    .executeTakeFirst();
  if (ends?.lo === null || ends?.lo === undefined) return 1;
  let lo = Number(ends.lo);
  let hi = Number(ends.hi) + 1;
  let found = hi;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    const row = await db
      .selectFrom('events')
      .select(['id', 'at'])
      .where('id', '>=', mid)
      .orderBy('id')
      .limit(1)
      .executeTakeFirst();
    if (row === undefined) hi = mid;
    else if (Number(row.at) >= t) {
      found = Number(row.id);
      hi = mid;
    } else lo = Number(row.id) + 1;
  }
  return found;
}

export class SqlEventRetention implements EventRetentionStore {
  /** A finished day's id range does not change: found once per day summed up. */
  private readonly dayIds = new Map<number, [number, number]>();

  constructor(private readonly db: Kysely<Database>) {}

  async claim(owner: string, now: number, leaseMs: number): Promise<boolean> {
    const result = await this.db
      .updateTable('event_retention')
      .set({ lease_owner: owner, lease_until: now + leaseMs })
      .where('id', '=', 1)
      .where((eb) =>
        eb.or([eb('lease_owner', 'is', null), eb('lease_owner', '=', owner), eb('lease_until', '<=', now)]),
      )
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async release(owner: string): Promise<void> {
    await this.db
      .updateTable('event_retention')
      .set({ lease_owner: null, lease_until: null })
      .where('id', '=', 1)
      .where('lease_owner', '=', owner)
      .execute();
  }

  async plan(policy: RetentionPolicy, now: number): Promise<PrunePlan> {
    const ends = await this.db
      .selectFrom('events')
      .select((eb) => [eb.fn.min('id').as('lo'), eb.fn.max('id').as('hi')])
      .executeTakeFirst();
    if (ends?.lo === null || ends?.lo === undefined)
      return { fromId: 1, fromAt: now, beforeId: 1, beforeAt: now };
    const fromId = Number(ends.lo);
    const atId = async (id: number) => {
      const row = await this.db
        .selectFrom('events')
        .select('at')
        .where('id', '>=', id)
        .orderBy('id')
        .limit(1)
        .executeTakeFirst();
      return row === undefined ? now : Number(row.at);
    };
    const fromAt = await atId(fromId);
    // The cut as an instant: what the age bound says, or the time of the event where the count bound cuts.
    let beforeId = fromId;
    let beforeAt = fromAt;
    if (policy.maxAgeMs !== null) {
      beforeId = Math.max(beforeId, await firstIdAt(this.db, now - policy.maxAgeMs));
      beforeAt = Math.max(beforeAt, now - policy.maxAgeMs);
    }
    // Ids below the newest N: the gaps retention left are all older, so at most N events are above.
    const countCut = policy.maxCount === null ? fromId : Number(ends.hi) - policy.maxCount + 1;
    if (countCut > beforeId) {
      beforeId = countCut;
      beforeAt = Math.max(beforeAt, await atId(countCut));
    }
    return { fromId, fromAt, beforeId, beforeAt };
  }

  async daysUntil(): Promise<number> {
    const row = await this.db
      .selectFrom('event_retention')
      .select('days_until')
      .where('id', '=', 1)
      .executeTakeFirst();
    return Number(row?.days_until ?? 0);
  }

  async advanceDaysUntil(until: number): Promise<void> {
    await this.db
      .updateTable('event_retention')
      .set({ days_until: until })
      .where('id', '=', 1)
      .where('days_until', '<', until)
      .execute();
  }

  private async idsOfDay(day: number): Promise<[number, number]> {
    let ids = this.dayIds.get(day);
    if (!ids) {
      ids = [
        await firstIdAt(this.db, day * DAY_MS - CLOCK_SLACK_MS),
        await firstIdAt(this.db, (day + 1) * DAY_MS + CLOCK_SLACK_MS),
      ];
      if (this.dayIds.size > 8) this.dayIds.clear();
      this.dayIds.set(day, ids);
    }
    return ids;
  }

  async summarizeDay(
    day: number,
    afterDeviceId: string | undefined,
    limit: number,
  ): Promise<string | undefined> {
    const from = day * DAY_MS;
    const to = from + DAY_MS;
    let q = this.db
      .selectFrom('devices')
      .select(['id', 'recorded_status'])
      .where('created_at', '<', to)
      .where((eb) => eb.or([eb('decommissioned_at', 'is', null), eb('decommissioned_at', '>=', from)]))
      .orderBy('id')
      .limit(Math.min(limit, INSERT_CHUNK));
    if (afterDeviceId !== undefined) q = q.where('id', '>', afterDeviceId);
    const devices = await q.execute();
    if (devices.length === 0) return undefined;
    const ids = devices.map((d) => d.id);
    const [lo, hi] = await this.idsOfDay(day);

    const before = new Map<string, boolean>();
    for (const r of await this.db
      .selectFrom('device_status_days')
      .select(['device_id', 'end_online'])
      .where('day', '=', day - 1)
      .where('device_id', 'in', ids)
      .execute()) {
      before.set(r.device_id, Number(r.end_online) === 1);
    }
    const changes = new Map<string, StatusChange[]>();
    for (const r of await this.db
      .selectFrom('events')
      .select(['device_id', 'at', 'data'])
      .where('device_id', 'in', ids)
      .where('type', '=', 'device.status')
      .where('id', '>=', lo)
      .where('id', '<', hi)
      .where('at', '>=', from)
      .where('at', '<', to)
      .orderBy('id')
      .execute()) {
      const id = r.device_id!;
      if (!before.has(id)) before.set(id, wasOnline(r.data));
      const list = changes.get(id) ?? [];
      changes.set(id, list);
      list.push({ at: Number(r.at), online: cameOnline(r.data) });
    }
    // Neither a summed-up day before nor a change that day: the next change says what it was, or, with none
    // since, the status last recorded still holds.
    const unknown = ids.filter((id) => !before.has(id));
    if (unknown.length > 0) {
      const next = this.db
        .selectFrom('events')
        .select((eb) => eb.fn.min('id').as('id'))
        .where('device_id', 'in', unknown)
        .where('type', '=', 'device.status')
        .where('id', '>=', hi)
        .groupBy('device_id');
      for (const r of await this.db
        .selectFrom('events')
        .select(['device_id', 'data'])
        .where('id', 'in', next)
        .execute()) {
        before.set(r.device_id!, wasOnline(r.data));
      }
    }
    const rows = devices.map((d) => {
      const s = summarizeDay(
        day,
        before.get(d.id) ?? d.recorded_status === 'online',
        changes.get(d.id) ?? [],
      );
      return {
        device_id: d.id,
        day,
        online_hours: s.onlineHours,
        start_hours: s.startHours,
        end_online: s.endOnline ? 1 : 0,
        online_ms: s.onlineMs,
        changes: s.changes,
      };
    });
    // Summing a day up twice (two replicas, a run cut short) gives the same rows: the first ones stay.
    await this.db
      .insertInto('device_status_days')
      .values(rows)
      .onConflict((oc) => oc.columns(['device_id', 'day']).doNothing())
      .execute();
    return ids[ids.length - 1];
  }

  async deleteEvents(
    fromId: number,
    beforeId: number,
    statusBefore: number,
    limit: number,
  ): Promise<{ deleted: number; nextId: number }> {
    const open = this.db
      .selectFrom('rollouts')
      .select('id')
      .where('state', 'in', [...OPEN_ROLLOUT_STATES]);
    const deletable =
      (upTo: number) =>
      (eb: ExpressionBuilder<Database, 'events'>): Expression<SqlBool> =>
        eb.and([
          eb('id', '>=', fromId),
          eb('id', '<', upTo),
          eb.or([eb('rollout_id', 'is', null), eb('rollout_id', 'not in', open)]),
          eb.or([eb('type', '!=', 'device.status'), eb('at', '<', statusBefore)]),
        ]);
    // The batch's last id first, then a delete bounded by it: at most `limit` rows, on either database.
    const batch = this.db
      .selectFrom('events')
      .select('id')
      .where(deletable(beforeId))
      .orderBy('id')
      .limit(limit);
    const last = await this.db
      .selectFrom(batch.as('b'))
      .select((eb) => eb.fn.max('b.id').as('id'))
      .executeTakeFirst();
    if (last?.id === null || last?.id === undefined) return { deleted: 0, nextId: beforeId };
    const nextId = Number(last.id) + 1;
    const result = await this.db.deleteFrom('events').where(deletable(nextId)).executeTakeFirst();
    return { deleted: Number(result.numDeletedRows), nextId };
  }

  async deleteDays(beforeDay: number, limit: number): Promise<number> {
    const oldest = await this.db
      .selectFrom('device_status_days')
      .select((eb) => eb.fn.min('day').as('day'))
      .executeTakeFirst();
    if (oldest?.day === null || oldest?.day === undefined || Number(oldest.day) >= beforeDay) return 0;
    const day = Number(oldest.day);
    const last = await this.db
      .selectFrom('device_status_days')
      .select('device_id')
      .where('day', '=', day)
      .orderBy('device_id')
      .limit(1)
      .offset(limit - 1)
      .executeTakeFirst();
    let q = this.db.deleteFrom('device_status_days').where('day', '=', day);
    if (last) q = q.where('device_id', '<=', last.device_id);
    const result = await q.executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

/**
 * The status history of devices since `since`: the summed-up days before `days_until`, made back into
 * changes, then the `device.status` events from there on.
 */
export async function readStatusHistory(
  db: Kysely<Database>,
  deviceIds: string[],
  since: number,
): Promise<Map<string, StatusHistory>> {
  const out = new Map<string, StatusHistory>();
  const mark = await db
    .selectFrom('event_retention')
    .select('days_until')
    .where('id', '=', 1)
    .executeTakeFirst();
  const daysUntil = Number(mark?.days_until ?? 0);
  for (let i = 0; i < deviceIds.length; i += INSERT_CHUNK) {
    const chunk = deviceIds.slice(i, i + INSERT_CHUNK);
    const devices = await db
      .selectFrom('devices')
      .select(['id', 'created_at'])
      .where('id', 'in', chunk)
      .execute();
    for (const d of devices) out.set(d.id, { registeredAt: Number(d.created_at), changes: [] });
    if (since < daysUntil) {
      const days = new Map<string, StatusDay[]>();
      for (const r of await db
        .selectFrom('device_status_days')
        .selectAll()
        .where('device_id', 'in', chunk)
        .where('day', '>=', dayOf(since))
        .where('day', '<', dayOf(daysUntil))
        .orderBy('device_id')
        .orderBy('day')
        .execute()) {
        const list = days.get(r.device_id) ?? [];
        days.set(r.device_id, list);
        list.push({
          day: Number(r.day),
          onlineHours: Number(r.online_hours),
          startHours: Number(r.start_hours),
          endOnline: Number(r.end_online) === 1,
          onlineMs: Number(r.online_ms),
          changes: Number(r.changes),
        });
      }
      for (const [id, list] of days) {
        out.get(id)?.changes.push(...changesFromDays(list).filter((c) => c.at >= since));
      }
    }
    const rows = await db
      .selectFrom('events')
      .select(['device_id', 'at', 'data'])
      .where('type', '=', 'device.status')
      .where('device_id', 'in', chunk)
      .where('at', '>=', Math.max(since, daysUntil))
      .orderBy('id')
      .execute();
    for (const r of rows)
      out.get(r.device_id!)?.changes.push({ at: Number(r.at), online: cameOnline(r.data) });
  }
  return out;
}
