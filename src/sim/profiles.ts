/**
 * Connectivity profiles (seed 000's fleets), in each device's own local time: when a device is online. Pure
 * and seeded: a device's sessions on a given local day are a function of (seed, device, day), so the
 * simulator asks "is it online at t?" or "when does it next connect?" anywhere in time, in any order,
 * without storing a schedule per device.
 *
 * - vehicle: 50–70 % online; on the road from early morning to the evening with a few dead zones, parked
 *   overnight (and some whole days, more at weekends); heartbeat every 5 min while on.
 * - pos: 90 %+ online in business hours (opens 07:00–09:00, closes 20:00–22:00, fewer Sundays), closed at night.
 * - signage: 95 %+ online; now and then an outage of 30 min to 4 h.
 * - iot: wakes every 15–60 min (its own period), online for 2 min: 20–40 % of devices count as online
 *   (the server calls a device online for 10 min after a heartbeat).
 * - medical: 80 %+ online, heartbeat every 30 s; outages of 1–8 h on some days.
 * - always: always online (heartbeat every 5 min).
 * - custom: on/off times per weekday, with optional jitter.
 */
import { FleetError } from '../core/errors.js';
import { localDay, localToUtc, weekday } from './local-time.js';
import { uniform, uniform4 } from './random.js';

const MINUTE = 60_000;
const DAY = 86_400_000;
/** How far ahead a device's next connection is looked for: beyond, it is treated as never. */
const HORIZON_DAYS = 21;

export interface DeviceKey {
  /** The scenario's seed. */
  seed: number;
  /** The device's index in the fleet. */
  index: number;
  zone: string;
}

export interface CustomWindow {
  days: number[];
  /** Minutes after local midnight; off ≤ on means the next day. */
  on: number;
  off: number;
}

export type ProfileSpec =
  | { kind: 'vehicle' | 'pos' | 'signage' | 'iot' | 'medical' | 'always' }
  | { kind: 'custom'; windows: CustomWindow[]; jitterMin: number; heartbeatMs: number };

export const PROFILE_NAMES = ['vehicle', 'pos', 'signage', 'iot', 'medical', 'always', 'custom'] as const;

/** A session: online from `start` to `end` (UTC ms). */
export type Session = readonly [number, number];

const u = (k: DeviceKey, day: number, salt: number) => uniform4(k.seed, k.index, day, salt);

/** How often the device heartbeats while online. */
export function heartbeatMs(p: ProfileSpec, k: DeviceKey): number {
  switch (p.kind) {
    case 'medical':
      return 30_000;
    case 'iot':
      return Math.round(15 + 45 * uniform(k.seed, k.index, 0x107)) * MINUTE;
    case 'custom':
      return p.heartbeatMs;
    default:
      return 5 * MINUTE;
  }
}

/** Sessions starting on local day `day` (UTC ms, sorted; they may run into the next day). */
export function sessionsOfDay(p: ProfileSpec, k: DeviceKey, day: number): Session[] {
  const at = (minutes: number) => localToUtc(k.zone, day, minutes);
  const wd = weekday(day);
  switch (p.kind) {
    case 'always':
      return [[at(0), at(1440)]];
    case 'vehicle': {
      const parked = wd === 0 || wd === 6 ? 0.3 : 0.08;
      if (u(k, day, 1) < parked) return [];
      const on = 330 + 90 * u(k, day, 2);
      const off = 1230 + 150 * u(k, day, 3);
      return withGaps([at(on), at(off)], Math.floor(4 * u(k, day, 4)), 5, 45, k, day);
    }
    case 'pos': {
      if (wd === 0 && u(k, day, 1) < 0.4) return [];
      const open = 420 + 120 * u(k, day, 2);
      const close = 1200 + 120 * u(k, day, 3);
      return withGaps([at(open), at(close)], Math.floor(3 * u(k, day, 4)), 5, 30, k, day);
    }
    case 'signage': {
      if (u(k, day, 1) >= 0.15) return [[at(0), at(1440)]];
      const start = 1440 * u(k, day, 2);
      const length = 30 + 210 * u(k, day, 3);
      return splitDay(at, start, length);
    }
    case 'medical': {
      if (u(k, day, 1) >= 0.6) return [[at(0), at(1440)]];
      const start = 1440 * u(k, day, 2);
      const length = 60 + 420 * u(k, day, 3);
      return splitDay(at, start, length);
    }
    case 'iot': {
      // Wakes on its own period, whatever the local time: the period's grid is fixed per device.
      const { period, phase } = iotGrid(p, k);
      const from = day * DAY;
      const out: Session[] = [];
      for (let t = from + ((((phase - from) % period) + period) % period); t < from + DAY; t += period) {
        out.push([t, t + IOT_AWAKE_MS]);
      }
      return out;
    }
    case 'custom': {
      const out: Session[] = [];
      p.windows.forEach((w, i) => {
        if (!w.days.includes(wd)) return;
        const jitter = (m: number, salt: number) => m + p.jitterMin * (2 * u(k, day, salt) - 1);
        const on = jitter(w.on, 10 + 2 * i);
        const off = jitter(w.off <= w.on ? w.off + 1440 : w.off, 11 + 2 * i);
        if (off > on) out.push([at(on), at(off)]);
      });
      return out.sort((a, b) => a[0] - b[0]);
    }
  }
}

const IOT_AWAKE_MS = 2 * MINUTE;

/** An iot device is awake for 2 minutes at phase + n × period, for every whole n. */
function iotGrid(p: ProfileSpec, k: DeviceKey): { period: number; phase: number } {
  const period = heartbeatMs(p, k);
  return { period, phase: Math.floor(uniform(k.seed, k.index, 0x108) * period) };
}

/** sessionFrom for iot, straight from its grid (it wakes up to 96 times a day: listing days would not do). */
function iotSessionFrom(p: ProfileSpec, k: DeviceKey, at: number): Session {
  const { period, phase } = iotGrid(p, k);
  const start = phase + Math.floor((at - phase) / period) * period;
  return at < start + IOT_AWAKE_MS
    ? [start, start + IOT_AWAKE_MS]
    : [start + period, start + period + IOT_AWAKE_MS];
}

function splitDay(at: (m: number) => number, start: number, length: number): Session[] {
  const end = Math.min(1440, start + length);
  return [
    ...(start > 0 ? [[at(0), at(start)] as const] : []),
    ...(end < 1440 ? [[at(end), at(1440)] as const] : []),
  ];
}

/** Cuts `gaps` dead zones of minGap–maxGap minutes out of a session. */
function withGaps(
  session: Session,
  gaps: number,
  minGap: number,
  maxGap: number,
  k: DeviceKey,
  day: number,
): Session[] {
  let out: Array<readonly [number, number]> = [session];
  const [s, e] = session;
  for (let g = 0; g < gaps; g++) {
    const start = Math.round(s + (e - s) * u(k, day, 20 + g));
    const end = start + Math.round((minGap + (maxGap - minGap) * u(k, day, 40 + g)) * MINUTE);
    const cut: Array<readonly [number, number]> = [];
    for (const [a, b] of out) {
      if (end <= a || start >= b) cut.push([a, b]);
      else {
        if (start > a) cut.push([a, start]);
        if (b > end) cut.push([end, b]);
      }
    }
    out = cut;
  }
  return out;
}

/**
 * A device's connectivity over time, from its profile: merged sessions across local days, looked up on
 * demand (a few days around the instant asked about).
 */
export class Connectivity {
  constructor(
    readonly profile: ProfileSpec,
    readonly key: DeviceKey,
  ) {}

  private around(at: number, daysBefore: number, daysAfter: number): Session[] {
    const d = localDay(this.key.zone, at);
    const all: Session[] = [];
    for (let day = d - daysBefore; day <= d + daysAfter; day++) {
      all.push(...sessionsOfDay(this.profile, this.key, day));
    }
    all.sort((a, b) => a[0] - b[0]);
    const merged: Array<[number, number]> = [];
    for (const [s, e] of all) {
      const last = merged[merged.length - 1];
      if (last && s <= last[1]) last[1] = Math.max(last[1], e);
      else merged.push([s, e]);
    }
    return merged;
  }

  /**
   * The session that contains `at`, or else the next one (null: none within three weeks). Sessions are made
   * day by day from the day before `at` and merged as they come; a merged session is final once the next
   * one starts after its end.
   */
  sessionFrom(at: number): Session | null {
    if (this.profile.kind === 'iot') return iotSessionFrom(this.profile, this.key, at);
    const first = localDay(this.key.zone, at) - 1;
    let cur: [number, number] | null = null;
    for (let day = first; day <= first + HORIZON_DAYS; day++) {
      for (const [s, e] of sessionsOfDay(this.profile, this.key, day)) {
        if (cur && s <= cur[1]) {
          if (e > cur[1]) cur[1] = e;
          continue;
        }
        if (cur && cur[1] > at) return cur;
        cur = [s, e];
      }
    }
    return cur && cur[1] > at ? cur : null;
  }

  /** The session that contains `at`, or null when the device is offline then. */
  sessionAt(at: number): Session | null {
    for (const s of this.around(at, 1, 1)) if (s[0] <= at && at < s[1]) return this.extend(s);
    return null;
  }

  isOnline(at: number): boolean {
    return this.sessionAt(at) !== null;
  }

  /** When the device next comes online after `at` (Infinity: not within three weeks). */
  nextOnline(at: number): number {
    for (let ahead = 0; ahead < HORIZON_DAYS; ahead += 3) {
      const from = at + ahead * DAY;
      for (const [s] of this.around(from, ahead === 0 ? 1 : 0, 3)) if (s > at) return s;
    }
    return Number.POSITIVE_INFINITY;
  }

  /** A session that reaches the end of the days looked at may go on: follow it to its real end. */
  private extend(s: Session): Session {
    let end = s[1];
    for (let i = 0; i < HORIZON_DAYS; i++) {
      const next = this.around(end, 0, 1).find(([a, b]) => a <= end && b > end);
      if (!next) break;
      end = next[1];
    }
    return [s[0], end];
  }
}

/** The share of time a device is online over [from, to), by sampling every `stepMs` (for tests, reports). */
export function onlineShare(c: Connectivity, from: number, to: number, stepMs = 5 * MINUTE): number {
  let on = 0;
  let n = 0;
  for (let t = from; t < to; t += stepMs, n++) if (c.isOnline(t)) on++;
  return n === 0 ? 0 : on / n;
}

export function profileError(field: string, message: string): never {
  throw new FleetError('VALIDATION', `${field}: ${message}`, { field });
}
