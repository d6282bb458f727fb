import { beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { DEFAULT_THRESHOLDS, type DeviceStatus } from '../src/core/device.js';
import {
  type DeviceHistory,
  hourCells,
  learnPresence,
  onlineIntervals,
} from '../src/core/rollout/presence.js';
import { parseRolloutSpec } from '../src/core/rollout/spec.js';
import { STATUS_LOOKBACK_MS } from '../src/core/rollout/status-days.js';
import { createRollout } from '../src/engine/rollout-service.js';
import { EventPruner } from '../src/events/event-pruner.js';
import type { SqlStore } from '../src/store/sql-store.js';
import type { NewEvent, RetentionPolicy, StoredEvent } from '../src/store/store.js';
import { forEachBackend, testRelease } from './support/stores.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const START = Date.UTC(2026, 0, 5);
const ctxAt = (now: number) => ({ now, thresholds: DEFAULT_THRESHOLDS });

const status = (deviceId: string, at: number, from: DeviceStatus, to: DeviceStatus): NewEvent => ({
  at,
  type: 'device.status',
  deviceId,
  rolloutId: null,
  actor: null,
  reason: null,
  data: { from, to },
});
const note = (at: number, ids: { deviceId?: string; rolloutId?: string } = {}): NewEvent => ({
  at,
  type: ids.rolloutId ? 'rollout.note' : 'device.note',
  deviceId: ids.deviceId ?? null,
  rolloutId: ids.rolloutId ?? null,
  actor: 'test',
  reason: null,
  data: {},
});

async function allEvents(store: SqlStore): Promise<StoredEvent[]> {
  return store.listEvents({ limit: 1_000_000 });
}

/** Online and offline a few times a day, on and off at minutes that vary with the device and the day. */
function statusHistoryOf(id: string, k: number, days: number): NewEvent[] {
  const out: NewEvent[] = [];
  let online = false;
  for (let d = 0; d < days; d++) {
    if ((d + k) % 5 === 4) continue; // a day away now and then
    for (const [on, off] of [
      [6 + (k % 3), 11],
      [13, 18 + ((d + k) % 4)],
    ] as const) {
      const minute = ((d * 7 + k * 13) % 50) + 5;
      const up = START + d * DAY + on * HOUR + minute * 60_000;
      const down = START + d * DAY + off * HOUR + (minute / 2) * 60_000;
      out.push(status(id, up, online ? 'online' : 'offline', 'online'));
      out.push(status(id, down, 'online', 'offline'));
      online = false;
    }
  }
  return out.sort((a, b) => a.at - b.at);
}

/** What the ETA learns of these devices at `now` (as engine/progress.ts asks for it). */
async function presenceAt(store: SqlStore, ids: string[], now: number) {
  const since = now - STATUS_LOOKBACK_MS;
  const stored = await store.rollouts.statusHistory(ids, since);
  const histories = ids.map((id): DeviceHistory => {
    const h = stored.get(id)!;
    return {
      from: Math.max(since, h.registeredAt),
      changes: h.changes,
      online: false,
      lastSeen: null,
      timezone: 'Europe/Paris',
    };
  });
  // The hour cells the ETA reads a history through, and what it learns from them.
  const cells = histories.map((h) => hourCells(onlineIntervals(h, now), h.from, now));
  return { cells, learnt: learnPresence(histories, now) };
}

const prunerFor = (
  store: SqlStore,
  clock: ManualClock,
  policy: Partial<RetentionPolicy>,
  batchRows?: number,
) =>
  new EventPruner(store, clock, {
    policy: { maxAgeMs: null, maxCount: null, ...policy },
    owner: 'test',
    ...(batchRows === undefined ? {} : { batchRows }),
  });

forEachBackend((backend) => {
  let store: SqlStore;
  let clock: ManualClock;
  beforeEach(async () => {
    store = await backend.open();
    clock = new ManualClock(START);
  });

  describe('event retention', () => {
    it('by age: old events go, those of open rollouts and status events not yet summed up stay', async () => {
      await store.importDevices([{ id: 'a' }, { id: 'b' }], ctxAt(START), 'test');
      await store.releases.create(testRelease('rel-2', '2.0.0', START), 'test');
      const spec = parseRolloutSpec({
        name: 'later',
        release: 'fw@2.0.0',
        filter: 'id = nobody',
        strategy: 'immediate',
        scheduled_at: new Date(START + 60 * DAY).toISOString(),
      });
      const { rollout } = await createRollout(store, spec, ctxAt(START), 'test');
      const written: NewEvent[] = [];
      for (let d = 0; d < 10; d++) {
        for (const h of [3, 15]) {
          const at = START + d * DAY + h * HOUR;
          written.push(
            note(at, { deviceId: 'a' }),
            note(at, { rolloutId: rollout.id }),
            note(at, { rolloutId: 'done' }),
          );
        }
      }
      written.push(...statusHistoryOf('a', 0, 10), ...statusHistoryOf('b', 1, 10));
      await store.appendEvents(written.sort((x, y) => x.at - y.at));
      const before = await allEvents(store);

      const now = START + 9 * DAY + 12 * HOUR;
      clock.set(now);
      const report = await prunerFor(store, clock, { maxAgeMs: 3 * DAY }).prune();

      // The cut falls in day 6 (at 12:00): days up to the 6th are summed up, the status events before day 7 go.
      const statusBefore = START + 7 * DAY;
      expect(await store.retention.daysUntil()).toBe(statusBefore);
      const kept = before.filter(
        (e) =>
          e.at >= now - 3 * DAY ||
          e.rolloutId === rollout.id ||
          (e.type === 'device.status' && e.at >= statusBefore),
      );
      expect(await allEvents(store)).toEqual(kept);
      expect(report.deletedEvents).toBe(before.length - kept.length);
      expect(report.summarizedDays).toBe(7);
      const days = await store.db.selectFrom('device_status_days').select(['device_id', 'day']).execute();
      expect(days).toHaveLength(2 * 7);
      // A second run finds nothing more to do.
      const again = await prunerFor(store, clock, { maxAgeMs: 3 * DAY }).prune();
      expect(again).toMatchObject({ deletedEvents: 0, summarizedDays: 0, statements: 0 });
    });

    it('by count: the newest events stay, in batches of the bounded size', async () => {
      const n = 10_000;
      await store.appendEvents(Array.from({ length: n }, (_, i) => note(START + i * 1_000)));
      clock.set(START + n * 1_000);
      const report = await prunerFor(store, clock, { maxCount: 2_500 }, 1_000).prune();
      expect(report.deletedEvents).toBe(7_500);
      // 7,500 rows in statements of at most 1,000: 8 of them.
      expect(report.statements).toBe(8);
      const left = await allEvents(store);
      expect(left).toHaveLength(2_500);
      expect(left[0]!.at).toBe(START + 7_500 * 1_000);
    });

    it('age and count together: whichever keeps fewer wins', async () => {
      await store.appendEvents(Array.from({ length: 100 }, (_, i) => note(START + i * HOUR)));
      clock.set(START + 100 * HOUR);
      await prunerFor(store, clock, { maxAgeMs: 10 * HOUR, maxCount: 50 }).prune();
      expect((await allEvents(store)).map((e) => e.at)).toEqual(
        Array.from({ length: 10 }, (_, i) => START + (90 + i) * HOUR),
      );
      await store.appendEvents(Array.from({ length: 100 }, (_, i) => note(START + (100 + i) * HOUR)));
      clock.set(START + 200 * HOUR);
      await prunerFor(store, clock, { maxAgeMs: 50 * HOUR, maxCount: 20 }).prune();
      expect(await allEvents(store)).toHaveLength(20);
    });

    it('the ETA learns the same from the summed-up days as from the events they replace', async () => {
      const ids = Array.from({ length: 12 }, (_, k) => `dev-${k}`);
      await store.importDevices(
        ids.map((id) => ({ id, timezone: 'Europe/Paris' })),
        ctxAt(START),
        'test',
      );
      await store.appendEvents(
        ids.flatMap((id, k) => statusHistoryOf(id, k, 12)).sort((a, b) => a.at - b.at),
      );
      const now = START + 12 * DAY + 10 * HOUR;
      clock.set(now);
      const before = await presenceAt(store, ids, now);
      const statusEvents = (await allEvents(store)).filter((e) => e.type === 'device.status').length;

      await prunerFor(store, clock, { maxAgeMs: 2 * DAY }).prune();
      const left = (await allEvents(store)).filter((e) => e.type === 'device.status').length;
      expect(left).toBeLessThan(statusEvents / 3);
      expect(await presenceAt(store, ids, now)).toEqual(before);
    });

    it('the online share over time is untouched: it is kept apart from the events', async () => {
      await store.importDevices([{ id: 'a' }], ctxAt(START), 'test');
      for (let d = 0; d < 5; d++) await store.recordFleetSnapshot(ctxAt(START + d * DAY));
      await store.appendEvents([status('a', START + HOUR, 'unknown', 'online')]);
      const history = await store.fleetHistory(START, START + 5 * DAY);
      clock.set(START + 5 * DAY);
      await prunerFor(store, clock, { maxAgeMs: HOUR }).prune();
      expect(await store.fleetHistory(START, START + 5 * DAY)).toEqual(history);
      expect(history).toHaveLength(5);
    });

    it('summed-up days older than the look-back go too', async () => {
      await store.importDevices([{ id: 'a' }], ctxAt(START), 'test');
      await store.appendEvents(statusHistoryOf('a', 0, 3));
      clock.set(START + 3 * DAY);
      await prunerFor(store, clock, { maxAgeMs: HOUR }).prune();
      const days = () => store.db.selectFrom('device_status_days').select('day').orderBy('day').execute();
      expect(await days()).toHaveLength(3);
      // Read from day 3 on: day 2 stays (summing up day 3 starts where it ended), days 0 and 1 go.
      clock.set(START + 3 * DAY + STATUS_LOOKBACK_MS);
      const report = await prunerFor(store, clock, { maxAgeMs: HOUR }).prune();
      expect(report.deletedDays).toBe(2);
      expect(Number((await days())[0]!.day)).toBe((START + 2 * DAY) / DAY);
    });

    it('one replica prunes at a time: a run while another holds the lease does nothing', async () => {
      await store.appendEvents(Array.from({ length: 10 }, (_, i) => note(START + i)));
      clock.set(START + DAY);
      expect(await store.retention.claim('other', START + DAY, 60_000)).toBe(true);
      const skipped = await prunerFor(store, clock, { maxAgeMs: HOUR }).prune();
      expect(skipped).toMatchObject({ skipped: true, deletedEvents: 0 });
      expect(await allEvents(store)).toHaveLength(10);
      clock.set(START + DAY + 60_000);
      const ran = await prunerFor(store, clock, { maxAgeMs: HOUR }).prune();
      expect(ran).toMatchObject({ skipped: false, deletedEvents: 10 });
    });
  });
});
