/**
 * Maintenance windows in a device's local time ("02:00–04:00 wherever the device is").
 *
 * A window has one *instance* per local opening date: it opens at `start` on that date and closes at
 * `end` the same date, or the next one when `end` ≤ `start` (22:00–02:00 crosses midnight). `days` and
 * `cron` restrict the opening date, so a Friday 22:00–02:00 window closes on Saturday.
 *
 * DST (see `instantOfLocal`): a bound that happens twice resolves to its first occurrence; a bound the
 * clocks skip resolves to the instant they jump. Hence:
 * - spring forward (New York 2024-03-10, 02:00–03:00 skipped): 02:00–04:00 opens at 03:00 EDT and lasts
 *   one hour; a window lying wholly in the skipped hour (02:00–02:30) does not open that day;
 * - fall back (2024-11-03, 01:00–02:00 twice): 01:00–02:00 opens once, at 01:00 EDT, and stays open until
 *   02:00 EST, two real hours; 01:00–01:30 is open only during the first pass (EDT).
 * Instances are therefore ordered and never overlap, and membership is decided by instances, never by
 * comparing wall clocks (which would open a fall-back window twice).
 */
import { isValidTimeZone } from '../device.js';
import { FleetError } from '../errors.js';
import { type CronSchedule, cronMatchesDate, parseCron } from './cron.js';
import { dateOfDay, instantOfLocal, localDay, weekdayOfDay } from './zone.js';

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export interface MaintenanceWindow {
  /** Local opening time, minutes after midnight. */
  start: number;
  /** Local closing time, minutes after midnight; ≤ start means the next day. Never equal to start. */
  end: number;
  /** `device`: each device's own zone; otherwise one IANA zone for every device. */
  timezone: string;
  /** Local weekdays on which the window opens. */
  days: readonly Weekday[];
  /** A cron expression further restricting the opening dates (its minute and hour give `start`). */
  cron: string | null;
}

export interface WindowInstance {
  start: number;
  end: number;
}

/** Long enough to find a 29 February that is also, say, a Monday. */
const SEARCH_DAYS = 366 * 28;
const JS_WEEKDAY: readonly Weekday[] = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

const crons = new Map<string, CronSchedule>();
function cronOf(expr: string): CronSchedule {
  let c = crons.get(expr);
  if (!c) {
    c = parseCron(expr);
    crons.set(expr, c);
  }
  return c;
}

/** The zone a device's window runs in: devices without a valid zone of their own use UTC. */
export function windowZone(window: Pick<MaintenanceWindow, 'timezone'>, deviceZone?: string | null): string {
  if (window.timezone !== 'device') return window.timezone;
  return deviceZone && isValidTimeZone(deviceZone) ? deviceZone : 'UTC';
}

export function opensOnDay(window: MaintenanceWindow, day: number): boolean {
  const weekday = weekdayOfDay(day);
  if (!window.days.includes(JS_WEEKDAY[weekday]!)) return false;
  if (window.cron === null) return true;
  const date = dateOfDay(day);
  return cronMatchesDate(cronOf(window.cron), date.month, date.day, weekday);
}

/** The instance opening on local date `day`, or null when the window does not open that day. */
export function windowOnDay(window: MaintenanceWindow, zone: string, day: number): WindowInstance | null {
  if (!opensOnDay(window, day)) return null;
  const start = instantOfLocal(zone, day, window.start);
  const end = instantOfLocal(zone, window.end > window.start ? day : day + 1, window.end);
  return end > start ? { start, end } : null; // empty: the whole window fell into a DST gap
}

/** The instance containing `at`, or null. */
export function windowAt(window: MaintenanceWindow, zone: string, at: number): WindowInstance | null {
  const today = localDay(zone, at);
  // An instance lasts under a day plus a DST shift, so only yesterday's and today's can contain `at`.
  for (const day of [today - 1, today]) {
    const w = windowOnDay(window, zone, day);
    if (w && w.start <= at && at < w.end) return w;
  }
  return null;
}

export function isInWindow(window: MaintenanceWindow, zone: string, now: number): boolean {
  return windowAt(window, zone, now) !== null;
}

/** The first instance opening at or after `from`. */
export function nextWindow(window: MaintenanceWindow, zone: string, from: number): WindowInstance {
  const first = localDay(zone, from) - 1; // a fall-back at midnight can put yesterday's opening ahead
  for (let day = first; day <= first + SEARCH_DAYS; day++) {
    const w = windowOnDay(window, zone, day);
    if (w && w.start >= from) return w;
  }
  throw new FleetError('VALIDATION', `window: never opens (cron ${window.cron ?? 'none'})`);
}

/** The next instant the window opens, ≥ now (an instance already open at `now` is not "next"). */
export function nextWindowStart(window: MaintenanceWindow, zone: string, now: number): number {
  return nextWindow(window, zone, now).start;
}

/** The instance open at `at`, otherwise the next one. */
export function currentOrNextWindow(window: MaintenanceWindow, zone: string, at: number): WindowInstance {
  return windowAt(window, zone, at) ?? nextWindow(window, zone, at);
}

/** When the window open at `at` closes; if none is open, when the next one closes. */
export function windowEndFor(window: MaintenanceWindow, zone: string, at: number): number {
  return currentOrNextWindow(window, zone, at).end;
}

/** `at` if the window is open then, otherwise the next opening: when a ready device may start. */
export function earliestStartInWindow(window: MaintenanceWindow, zone: string, at: number): number {
  return isInWindow(window, zone, at) ? at : nextWindowStart(window, zone, at);
}

/**
 * `earliestStartInWindow` for many instants in one zone, computing each instance once: for a large fleet
 * the ETA asks about thousands of devices per zone. Instants must be ≥ `from`.
 */
export function windowSchedule(
  window: MaintenanceWindow,
  zone: string,
  from: number,
): (at: number) => number {
  const instances = [currentOrNextWindow(window, zone, from)];
  return (at) => {
    while (instances[instances.length - 1]!.end <= at) {
      instances.push(nextWindow(window, zone, instances[instances.length - 1]!.end));
    }
    let lo = 0;
    let hi = instances.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (instances[mid]!.end > at) hi = mid;
      else lo = mid + 1;
    }
    const w = instances[lo]!;
    return Math.max(at, w.start);
  };
}
