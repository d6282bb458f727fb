import { describe, expect, it } from 'vitest';
import { type EtaDevice, type EtaInput, estimateEta, meanUpdateMs, observedThroughput } from './eta.js';
import { type DeviceHistory, LocalHours, learnPresence, type StatusChange } from './presence.js';
import { WEEKDAYS } from './window.js';

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const MONDAY = Date.parse('2024-10-21T00:00:00Z');
const hash = (a: number, b: number) => {
  const x = Math.sin(a * 12.9898 + b * 78.233) * 43758.5453;
  return x - Math.floor(x);
};

interface Daily {
  count: number;
  /** Online from `on` to `off`, local hours (off past 24: the next day). */
  on: number;
  off: number;
  days?: number;
  zone?: string;
  /** Whether device i is around on the day starting at `day` (local midnight as UTC ms). */
  around?: (i: number, day: number) => boolean;
  phase?: number;
}

/** Devices online on the same hours every day they are around, learnt at `now`. */
function fleet(now: number, ...groups: Daily[]): EtaDevice[] {
  const histories: DeviceHistory[] = [];
  const phases: number[] = [];
  for (const g of groups) {
    const offset =
      g.zone === 'America/Los_Angeles' ? -7 * HOUR : g.zone === 'America/New_York' ? -4 * HOUR : 0;
    for (let i = 0; i < g.count; i++) {
      const from = now - (g.days ?? 14) * DAY;
      const changes: StatusChange[] = [];
      for (let day = Math.floor(from / DAY) * DAY - offset; day < now; day += DAY) {
        if (g.around && !g.around(i, day)) continue;
        const on = day + g.on * HOUR;
        const off = day + g.off * HOUR;
        if (on >= from && on <= now) changes.push({ at: on, online: true });
        if (off >= from && off <= now) changes.push({ at: off, online: false });
      }
      const last = changes[changes.length - 1];
      histories.push({
        from,
        changes,
        online: last?.online === true,
        lastSeen: last ? (last.online ? now : last.at) : null,
        timezone: g.zone ?? 'UTC',
      });
      phases.push(g.phase ?? 0);
    }
  }
  return learnPresence(histories, now).map((presence, i) => ({ presence, phase: phases[i]! }));
}

const always = (count: number, phase = 0): Daily => ({ count, on: 0, off: 48, phase });
const eta = (now: number, devices: EtaDevice[], rest: Partial<EtaInput> = {}) =>
  estimateEta({ devices, maxConcurrent: 100, now, clock: new LocalHours(), ...rest });
const hoursAfter = (now: number, t: number) => (t - now) / HOUR;

describe('estimateEta', () => {
  const now = MONDAY + 14 * DAY + 12 * HOUR;

  it('an online fleet takes devices × update time / max_concurrent', () => {
    const e = eta(now, fleet(now, always(1000)));
    // Ten rounds of 100 updates of 15 minutes.
    expect(hoursAfter(now, e.finishAt)).toBeCloseTo(2.5, 0);
    expect(e.throughputPerHour).toBe(400);
    expect(e.unknownDevices).toBe(0);
  });

  it('takes the update time observed once updates have finished, and the rate as a ceiling', () => {
    const devices = fleet(now, always(1000));
    expect(hoursAfter(now, eta(now, devices, { updateMs: 6 * MINUTE }).finishAt)).toBeCloseTo(1, 0);
    const capped = eta(now, devices, {
      updateMs: 6 * MINUTE,
      rate: { perMinute: 5, growthFactor: 1, afterSuccesses: null, maxPerMinute: null },
    });
    expect(capped.throughputPerHour).toBe(300);
    expect(hoursAfter(now, capped.finishAt)).toBeCloseTo(1000 / 300, 0);
  });

  it('with failures seen, the last failing device uses its retries: backoffs and update times added', () => {
    const devices = fleet(now, always(1000));
    const retry = { attempts: 3, backoffMs: MINUTE, factor: 2, maxBackoffMs: HOUR };
    const plain = eta(now, devices, { retry }).finishAt;
    // No failure so far (or too rare to reach one of these devices): no tail.
    expect(eta(now, devices, { retry, failureRate: null }).finishAt).toBe(plain);
    expect(eta(now, devices, { retry, failureRate: 0.0001 }).finishAt).toBe(plain);
    // 1 %: two more attempts, after 1 and 2 minutes, of 15 minutes each.
    expect(eta(now, devices, { retry, failureRate: 0.01 }).finishAt - plain).toBe(33 * MINUTE);
    expect(eta(now, devices, { retry: { ...retry, attempts: 1 }, failureRate: 0.01 }).finishAt).toBe(plain);
  });

  it('a fleet of vehicles parked overnight finishes the next morning, not in an hour', () => {
    const evening = MONDAY + 14 * DAY + 22 * HOUR;
    const e = eta(evening, fleet(evening, { count: 300, on: 6.5, off: 21 }));
    expect(e.finishAt).toBeGreaterThan(MONDAY + 15 * DAY + 6 * HOUR);
    expect(e.finishAt).toBeLessThan(MONDAY + 15 * DAY + 9 * HOUR);
  });

  it('vehicles parked for whole days now and then stretch a large fleet over days', () => {
    const evening = MONDAY + 14 * DAY + 22 * HOUR;
    const parked = (i: number, day: number) => hash(i, day / DAY) >= 0.1;
    const e = eta(evening, fleet(evening, { count: 2000, on: 6, off: 21, around: parked }));
    // Each morning a tenth of those left is parked again: 2000 → 200 → 20 → 2 → 0.2.
    expect(e.finishAt).toBeGreaterThan(MONDAY + 17 * DAY);
    expect(e.finishAt).toBeLessThan(MONDAY + 19 * DAY);
  });

  it('shops closed on Sundays are expected on Monday morning, not on Sunday', () => {
    const saturday = MONDAY + 12 * DAY + 21 * HOUR;
    const open = (_: number, day: number) => new Date(day).getUTCDay() !== 0;
    const e = eta(saturday, fleet(saturday, { count: 200, on: 8.5, off: 20, around: open }));
    expect(e.finishAt).toBeGreaterThan(MONDAY + 14 * DAY + 8 * HOUR);
    expect(e.finishAt).toBeLessThan(MONDAY + 14 * DAY + 11 * HOUR);
  });

  it('a device registered an hour ago is taken like its fleet, not left out', () => {
    const evening = MONDAY + 14 * DAY + 22 * HOUR;
    const e = eta(
      evening,
      fleet(evening, { count: 100, on: 6, off: 21 }, { count: 1, on: 6, off: 21, days: 1 / 24 }),
    );
    expect(e.unknownDevices).toBe(0);
    expect(e.finishAt).toBeLessThan(MONDAY + 15 * DAY + 9 * HOUR);
  });

  it('leaves out and counts a device silent for two weeks, the others finish as usual', () => {
    const evening = MONDAY + 14 * DAY + 22 * HOUR;
    const dead = { count: 1, on: 6, off: 21, around: () => false };
    const e = eta(evening, fleet(evening, { count: 200, on: 6, off: 21 }, dead));
    expect(e.unknownDevices).toBe(1);
    expect(e.finishAt).toBeLessThan(MONDAY + 15 * DAY + 9 * HOUR);
  });

  it('waits out an outage of a few hours on an always-on fleet, and no longer', () => {
    // Always on, down for three hours on one day in five; twenty are down since an hour now.
    const histories = Array.from({ length: 400 }, (_, i): DeviceHistory => {
      const from = now - 14 * DAY;
      const changes: StatusChange[] = [];
      for (let day = 0; day < 14; day++) {
        if (hash(i, day) >= 0.2) continue;
        const down = from + day * DAY + (1 + Math.floor(hash(i, day + 100) * 20)) * HOUR;
        changes.push({ at: down, online: false }, { at: down + 3 * HOUR, online: true });
      }
      if (i < 20) changes.push({ at: now - HOUR, online: false });
      return { from, changes, online: i >= 20, lastSeen: i < 20 ? now - HOUR : now };
    });
    const devices = learnPresence(histories, now).map((presence) => ({ presence }));
    const e = eta(now, devices, { updateMs: 5 * MINUTE });
    expect(hoursAfter(now, e.finishAt)).toBeGreaterThan(1.5);
    expect(hoursAfter(now, e.finishAt)).toBeLessThan(6);
  });

  it('starts devices only inside their window, in their own zone', () => {
    const window = { start: 120, end: 240, timezone: 'device', days: WEEKDAYS, cron: null };
    const devices = fleet(
      now,
      { ...always(50), zone: 'America/New_York' },
      { ...always(50), zone: 'America/Los_Angeles' },
    );
    const e = eta(now, devices, { window });
    // 02:00 in Los Angeles (PST) is 10:00 UTC the next day, three hours after New York's.
    const opens = Date.parse('2024-11-05T10:00:00Z');
    expect(e.finishAt).toBeGreaterThanOrEqual(opens + 15 * MINUTE);
    expect(e.finishAt).toBeLessThan(opens + HOUR);
  });

  it('a device with windows of its own (device_defined) starts in them, not in the fallback window', () => {
    const fallback = { start: 120, end: 240, timezone: 'UTC', days: WEEKDAYS, cron: null }; // 02:00–04:00
    const own = [
      { start: 14 * 60, end: 15 * 60, timezone: 'UTC', days: WEEKDAYS, cron: null },
      { start: 14 * 60 + 30, end: 16 * 60, timezone: 'UTC', days: WEEKDAYS, cron: null }, // overlaps: no faster
    ];
    const devices = fleet(now, always(10)).map((d) => ({ ...d, windows: own }));
    const e = eta(now, devices, { window: fallback });
    // Today 14:00 (now is 12:00 UTC), not tomorrow's 02:00.
    expect(e.finishAt).toBeGreaterThanOrEqual(now + 2 * HOUR + 15 * MINUTE);
    expect(e.finishAt).toBeLessThan(now + 4 * HOUR);
    const without = eta(
      now,
      devices.map(({ windows: _, ...d }) => d),
      { window: fallback },
    );
    expect(without.finishAt).toBeGreaterThan(now + 14 * HOUR);
  });

  it('devices never online in their window never finish, unless they may update on connect', () => {
    const window = { start: 120, end: 240, timezone: 'device', days: WEEKDAYS, cron: null };
    const shops = fleet(now, { count: 100, on: 8.5, off: 20 });
    const never = eta(now, shops, { window });
    expect(never.unknownDevices).toBeGreaterThan(95);
    const onConnect = eta(now, shops, { window, missedWindow: 'on_connect', startedAt: now });
    expect(onConnect.unknownDevices).toBe(0);
    // The first window (02:00–04:00 tomorrow) goes by without them; they update when they open at 08:30.
    expect(onConnect.finishAt).toBeGreaterThan(MONDAY + 15 * DAY + 8 * HOUR);
    expect(onConnect.finishAt).toBeLessThan(MONDAY + 15 * DAY + 10 * HOUR);
  });

  it('starts nothing before scheduled_at, and nothing after end_at', () => {
    const devices = fleet(now, always(1000));
    expect(hoursAfter(now, eta(now, devices, { notBefore: now + 5 * HOUR }).finishAt)).toBeCloseTo(7.5, 0);
    // After end_at the waiting devices are left out: done once those updating are through.
    expect(hoursAfter(now, eta(now, devices, { endAt: now + HOUR }).finishAt)).toBeCloseTo(1.25, 0);
  });

  it('on_connect ends at end_at, not before', () => {
    const e = eta(now, fleet(now, always(10)), { continuous: true, endAt: now + 10 * HOUR });
    expect(e.finishAt).toBe(now + 10 * HOUR);
  });

  it('opens each phase at the previous gate: soak end or quorum finished, whichever is later', () => {
    const e = eta(now, fleet(now, always(10, 0), always(100, 1), always(890, 2)), {
      phases: [
        { name: 'canary', waitMs: 24 * HOUR },
        { name: 'early', waitMs: 12 * HOUR },
        { name: 'full', waitMs: 0, quorum: 100 },
      ],
      strategy: 'progressive',
      maxConcurrent: 20,
    });
    const [canary, early, full] = e.phases;
    expect(canary).toMatchObject({ devices: 10, startAt: now, gateAt: now + 24 * HOUR });
    expect(hoursAfter(now, canary!.finishAt)).toBeCloseTo(0.25, 0);
    expect(early).toMatchObject({ startAt: now + 24 * HOUR, gateAt: now + 36 * HOUR });
    expect(hoursAfter(now, early!.finishAt)).toBeCloseTo(24 + 1.25, 0);
    // 890 devices, 20 at a time for 15 minutes: 11.1 hours; its gate needs all of them.
    expect(hoursAfter(now, full!.startAt)).toBe(36);
    expect(hoursAfter(now, e.finishAt)).toBeCloseTo(36 + 11.25, 0);
    expect(full!.gateAt).toBe(e.finishAt);
  });

  it('keeps the recorded start of phases already running and counts updates in progress', () => {
    const e = eta(now, fleet(now, always(100, 1)), {
      phases: [
        { name: 'canary', waitMs: 24 * HOUR, startedAt: now - 48 * HOUR, finished: 10 },
        { name: 'rest', waitMs: 0, startedAt: now - 20 * HOUR, finished: 300, active: 100 },
      ],
      strategy: 'progressive',
    });
    expect(e.phases[0]!.gateAt).toBe(now - 20 * HOUR);
    expect(e.phases[1]).toMatchObject({ startAt: now - 20 * HOUR, devices: 500 });
    // The 100 in progress end within 15 minutes, then 100 more take 15.
    expect(hoursAfter(now, e.finishAt)).toBeCloseTo(0.5, 0);
  });

  it('opens the next rolling batch once nobody of the current one is updating', () => {
    const e = eta(now, fleet(now, always(100, 0), always(100, 1), always(100, 2)), {
      phases: [0, 1, 2].map((i) => ({ name: `batch ${i + 1}`, waitMs: 0 })),
      strategy: 'rolling',
      maxConcurrent: 50,
    });
    // Each batch: two rounds of 50 updates of 15 minutes.
    expect(hoursAfter(now, e.phases[1]!.startAt)).toBeCloseTo(0.5, 0);
    expect(hoursAfter(now, e.finishAt)).toBeCloseTo(1.5, 0);
  });
});

describe('what was observed', () => {
  const now = MONDAY;
  it('observedThroughput counts finishes in the last hour', () => {
    expect(observedThroughput([now - 10, now - 30 * MINUTE, now - 2 * HOUR], now)).toBe(2);
    expect(observedThroughput([now - 10, now - 30 * MINUTE], now, 30 * MINUTE)).toBe(2);
  });
  it('meanUpdateMs is the mean time updates held their slot', () => {
    expect(meanUpdateMs([10 * MINUTE, 20 * MINUTE])).toBe(15 * MINUTE);
    expect(meanUpdateMs([])).toBeNull();
  });
});
