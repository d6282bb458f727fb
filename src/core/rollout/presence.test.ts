import { describe, expect, it } from 'vitest';
import {
  type DeviceHistory,
  hourCells,
  LocalHours,
  learnPresence,
  MERGE_GAP_MS,
  nextHour,
  onlineIntervals,
  type StatusChange,
  stateNow,
} from './presence.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const MONDAY = Date.parse('2024-10-21T00:00:00Z');
const hash = (a: number, b: number) => {
  const x = Math.sin(a * 12.9898 + b * 78.233) * 43758.5453;
  return x - Math.floor(x);
};

/** Online from `on` to `off` (UTC hours) every day of the `days` before `now` on which `around` says so. */
function daily(
  now: number,
  o: { days: number; on: number; off: number; around?: (day: number) => boolean; kind?: string },
): DeviceHistory {
  const from = now - o.days * DAY;
  const changes: StatusChange[] = [];
  for (let day = Math.floor(from / DAY) * DAY; day < now; day += DAY) {
    if (o.around && !o.around(day)) continue;
    const on = day + o.on * HOUR;
    const off = day + o.off * HOUR;
    if (on >= from && on < now) changes.push({ at: on, online: true });
    if (off >= from && off < now) changes.push({ at: off, online: false });
  }
  const last = changes[changes.length - 1];
  return {
    from,
    changes,
    online: last?.online === true,
    lastSeen: last ? (last.online ? now : last.at) : null,
    kind: o.kind ?? null,
  };
}

describe('reading the status history', () => {
  it('takes an offline/online pair at one instant (a sampled server) and short gaps as online time', () => {
    const h: DeviceHistory = {
      from: MONDAY,
      changes: [
        { at: MONDAY + HOUR, online: true },
        { at: MONDAY + 2 * HOUR, online: false },
        { at: MONDAY + 2 * HOUR, online: true },
        { at: MONDAY + 3 * HOUR, online: false },
        { at: MONDAY + 3 * HOUR + MERGE_GAP_MS - 1, online: true },
        { at: MONDAY + 4 * HOUR, online: false },
        { at: MONDAY + 6 * HOUR, online: true },
      ],
      online: true,
      lastSeen: MONDAY + 7 * HOUR,
    };
    expect(onlineIntervals(h, MONDAY + 7 * HOUR)).toEqual([
      [MONDAY + HOUR, MONDAY + 4 * HOUR],
      [MONDAY + 6 * HOUR, MONDAY + 7 * HOUR],
    ]);
  });

  it('a device offline since before its history began was offline; one with no change is as it is now', () => {
    const since = { from: MONDAY, lastSeen: null };
    expect(
      onlineIntervals(
        { ...since, changes: [{ at: MONDAY + HOUR, online: false }], online: false },
        MONDAY + 2 * HOUR,
      ),
    ).toEqual([[MONDAY, MONDAY + HOUR]]);
    expect(onlineIntervals({ ...since, changes: [], online: true }, MONDAY + HOUR)).toEqual([
      [MONDAY, MONDAY + HOUR],
    ]);
    expect(onlineIntervals({ ...since, changes: [], online: false }, MONDAY + HOUR)).toEqual([]);
  });

  it('an hour is online when the device was at some moment of it, its end included (first heard of at 09:00)', () => {
    const cells = hourCells(
      [[MONDAY + 9 * HOUR, MONDAY + 10 * HOUR]],
      MONDAY + 7 * HOUR,
      MONDAY + 12 * HOUR + 20 * 60_000,
    );
    // 07, 08 (ends at 09:00, when it was heard of), 09, 10, 11; the hour holding now is not half gone.
    expect(cells.first * HOUR).toBe(MONDAY + 7 * HOUR);
    expect([...cells.online]).toEqual([0, 1, 1, 0, 0]);
  });
});

describe('learning when devices connect', () => {
  const now = MONDAY + 14 * DAY + 22 * HOUR;

  it('learns how often vans are parked a whole day, working days and weekends apart', () => {
    const weekend = (day: number) => [0, 6].includes(new Date(day).getUTCDay());
    const fleet = Array.from({ length: 400 }, (_, i) =>
      daily(now, {
        days: 14,
        on: 6,
        off: 20,
        around: (day) => hash(i, day / DAY) >= (weekend(day) ? 0.3 : 0.1),
      }),
    );
    const [van] = learnPresence(fleet, now);
    expect(van!.activity[1]).toBeCloseTo(0.9, 1);
    expect(van!.activity[0]).toBeCloseTo(0.7, 1);
    expect(van!.hourly[12]).toBeGreaterThan(0.95);
    expect(van!.hourly[2]).toBeLessThan(0.05);
  });

  it('takes shops that open late some days for shops, not for days away', () => {
    // Open from 08:00 or 09:00: on a 09:00 day the 08:00 hour is missed, the day is not.
    const fleet = Array.from({ length: 400 }, (_, i) =>
      daily(now, { days: 14, on: hash(i, 1) < 0.5 ? 8 : 9, off: 20 }),
    );
    expect(learnPresence(fleet, now)[0]!.activity).toEqual([1, 1, 1, 1, 1, 1, 1]);
  });

  it('pools a device of little history with its fleet, and a kind of device with its kind', () => {
    const vans = Array.from({ length: 100 }, () => daily(now, { days: 14, on: 6, off: 20, kind: 'van' }));
    const shops = Array.from({ length: 100 }, () => daily(now, { days: 14, on: 10, off: 18, kind: 'shop' }));
    const newVan: DeviceHistory = {
      from: now - HOUR,
      changes: [],
      online: false,
      lastSeen: null,
      kind: 'van',
    };
    const learnt = learnPresence([...vans, ...shops, newVan], now);
    const fresh = learnt[200]!;
    expect(fresh.hourly[7]).toBeGreaterThan(0.9);
    expect(learnt[150]!.hourly[7]).toBeLessThan(0.1);
  });

  it('a device silent for two weeks in a fleet seen daily is taken as rarely around', () => {
    const fleet = Array.from({ length: 200 }, () => daily(now, { days: 14, on: 6, off: 20 }));
    const dead: DeviceHistory = { from: now - 14 * DAY, changes: [], online: false, lastSeen: null };
    const learnt = learnPresence([...fleet, dead], now);
    expect(learnt[200]!.activity[2]).toBeLessThan(0.2);
    expect(learnt[0]!.activity[2]).toBe(1);
  });

  it('follows an outage hour by hour: likelier over the longer it lasted', () => {
    // Always on, but now and then down for three hours.
    const fleet = Array.from({ length: 300 }, (_, i): DeviceHistory => {
      const from = now - 14 * DAY;
      const changes: StatusChange[] = [];
      for (let day = 0; day < 14; day++) {
        if (hash(i, day) >= 0.3) continue;
        const down = from + day * DAY + (2 + Math.floor(hash(i, day + 100) * 18)) * HOUR;
        changes.push({ at: down, online: false }, { at: down + 3 * HOUR, online: true });
      }
      return { from, changes, online: true, lastSeen: now };
    });
    const d = learnPresence(fleet, now)[0]!;
    expect(d.duration[2]!).toBeGreaterThan(d.duration[1]!);
    // Offline for an hour now: back within the next few hours, not tomorrow.
    const down = { ...d, online: false, offlineFor: 1 };
    const s = stateNow(down, 22);
    const clock = new LocalHours();
    for (let h = 1; h <= 4; h++) nextHour(down, s, clock.hourOf('UTC', Math.floor(now / HOUR) + h), -1);
    expect(s[0]).toBeGreaterThan(0.8);
  });
});
