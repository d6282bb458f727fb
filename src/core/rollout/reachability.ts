/**
 * Reachability: which targets a rollout's window has not reached lately. Pure: the status history the store
 * keeps and the time come in.
 *
 * A target is reachable when it was online at some moment inside one of its windows (in its own zone, or the
 * window's) on one of the last `days` days; without a window, when it was online at all in them. A target
 * known for less than one whole window occurrence is too new to judge, and one never seen at all (no
 * last_seen, no status change) is listed apart. For the unreachable, the local hours they were online make
 * the suggestion: a wider window covering them, `missed_window: on_connect`, or excluding them.
 */
import { type DeviceHistory, HOUR_MS, onlineIntervals } from './presence.js';
import { type MaintenanceWindow, nextWindow, windowAt, windowZone } from './window.js';
import { DAY_MS, offsetAt } from './zone.js';

/** Days of history a plan looks back over by default. */
export const REACHABILITY_DAYS = 7;
/** Devices listed by id in each group; the counts cover them all. */
export const REACHABILITY_LISTED = 100;

export interface ReachabilityTarget {
  deviceId: string;
  history: DeviceHistory;
}

export interface ReachabilityInput {
  targets: readonly ReachabilityTarget[];
  window: MaintenanceWindow | null;
  missedWindow: 'next_window' | 'on_connect';
  days?: number;
  now: number;
}

export interface Reachability {
  days: number;
  /** Targets judged (those known for at least one window occurrence). */
  checked: number;
  reachable: number;
  /** Known too briefly for one of their windows to have gone by: not judged. */
  tooNew: number;
  /** Seen, but not online inside their window on any of the last `days` days. */
  unreachable: { count: number; devices: string[] };
  /** Never seen at all: no last_seen, no status change. */
  neverSeen: { count: number; devices: string[] };
  /** Local hours (0–23) in which the unreachable targets were online, with how many of them were. */
  unreachableOnlineHours: number[];
  suggestions: string[];
}

/** Whether a history shows anything at all. */
const seen = (h: DeviceHistory) => h.lastSeen !== null || h.online || h.changes.length > 0;

/** The window occurrences (in this zone) that lie wholly or partly within [from, to]. */
function occurrences(
  window: MaintenanceWindow,
  zone: string,
  from: number,
  to: number,
): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let w = windowAt(window, zone, from) ?? nextWindow(window, zone, from);
  while (w.start < to) {
    out.push([Math.max(from, w.start), Math.min(to, w.end)]);
    w = nextWindow(window, zone, w.end);
  }
  return out;
}

const overlaps = (a: ReadonlyArray<readonly [number, number]>, b: ReadonlyArray<readonly [number, number]>) =>
  a.some(([s, e]) => b.some(([t, u]) => s < u && t < e));

function localHour(zone: string, at: number): number {
  const local = at + offsetAt(zone, at);
  return Math.floor((((local % DAY_MS) + DAY_MS) % DAY_MS) / HOUR_MS);
}

export function assessReachability(input: ReachabilityInput): Reachability {
  const days = input.days ?? REACHABILITY_DAYS;
  const { now, window } = input;
  const lookFrom = now - days * DAY_MS;
  const unreachable: string[] = [];
  const never: string[] = [];
  const hours = new Array<number>(24).fill(0);
  let reachable = 0;
  let tooNew = 0;
  for (const t of input.targets) {
    const h = t.history;
    if (!seen(h)) {
      never.push(t.deviceId);
      continue;
    }
    const from = Math.max(lookFrom, h.from);
    const zone = windowZone(window ?? { timezone: 'device' }, h.timezone ?? null);
    const online = onlineIntervals({ ...h, from }, now);
    // Without a window, any time is its window: judged over the whole look-back.
    const judged: Array<[number, number]> = window
      ? occurrences(window, zone, from, now).filter(([s, e]) => e > s)
      : [[from, now]];
    if (judged.length === 0 || (!window && now - from < HOUR_MS)) {
      tooNew++;
      continue;
    }
    if (overlaps(online, judged)) {
      reachable++;
      continue;
    }
    unreachable.push(t.deviceId);
    // Which local hours it was online in, each counted once per device.
    const mine = new Set<number>();
    for (const [s, e] of online) {
      for (let at = s; at < e && mine.size < 24; at += HOUR_MS) mine.add(localHour(zone, at));
      if (e > s) mine.add(localHour(zone, e - 1));
    }
    for (const hour of mine) hours[hour]!++;
  }
  return {
    days,
    checked: reachable + unreachable.length,
    reachable,
    tooNew,
    unreachable: { count: unreachable.length, devices: unreachable.slice(0, REACHABILITY_LISTED) },
    neverSeen: { count: never.length, devices: never.slice(0, REACHABILITY_LISTED) },
    unreachableOnlineHours: hours,
    suggestions: suggest(unreachable.length, never.length, hours, input),
  };
}

const hh = (h: number) => `${String(h % 24).padStart(2, '0')}:00`;

/** The shortest span of local hours (wrapping midnight) holding at least half of the device-hours seen. */
export function busiestSpan(hours: readonly number[]): { start: number; end: number } | null {
  const total = hours.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const peak = Math.max(...hours);
  for (let length = 1; length <= 24; length++) {
    let best = -1;
    let bestStart = 0;
    for (let start = 0; start < 24; start++) {
      let sum = 0;
      for (let k = 0; k < length; k++) sum += hours[(start + k) % 24]!;
      if (sum > best) {
        best = sum;
        bestStart = start;
      }
    }
    // A span where the devices are online together: every hour in it at least half the peak.
    if (best >= peak) {
      let start = bestStart;
      let end = bestStart + length;
      while (end - start < 24 && hours[end % 24]! * 2 >= peak) end++;
      while (end - start < 24 && hours[(start + 23) % 24]! * 2 >= peak) start = (start + 23) % 24;
      return { start, end: end % 24 };
    }
  }
  return null;
}

function suggest(
  unreachable: number,
  never: number,
  hours: readonly number[],
  input: ReachabilityInput,
): string[] {
  const out: string[] = [];
  const days = input.days ?? REACHABILITY_DAYS;
  if (unreachable > 0) {
    const span = busiestSpan(hours);
    const what = `${unreachable} target${unreachable === 1 ? ' was' : 's were'} not online inside ${input.window ? 'the window' : 'any hour'} on any of the last ${days} days`;
    if (input.window && span) {
      out.push(
        `${what}: they were online around ${hh(span.start)}–${hh(span.end)} local; widen the window to cover those hours (window: { start: "${hh(span.start)}", end: "${hh(span.end)}" })`,
      );
    } else out.push(`${what}`);
    if (input.window && input.missedWindow !== 'on_connect')
      out.push(
        'or set missed_window: on_connect, so that each updates when it next connects after its first window',
      );
    out.push('or exclude them from the filter (e.g. by tag), since they will not update as planned');
  }
  if (never > 0) {
    out.push(
      `${never} target${never === 1 ? ' has' : 's have'} never been seen: exclude them (filter: ... and status != unknown), or expect them only once they first connect`,
    );
  }
  return out;
}
