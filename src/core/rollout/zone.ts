/**
 * Time-zone arithmetic with `Intl.DateTimeFormat` only (no date library): the local wall clock of an
 * instant, and the instant of a local wall-clock time, with a fixed rule for the times DST makes
 * ambiguous or impossible.
 *
 * Local dates are "day numbers": days since 1970-01-01 on the proleptic calendar, so date arithmetic
 * is integer arithmetic and weekdays need no zone.
 */

export const DAY_MS = 86_400_000;
export const MINUTE_MS = 60_000;

export interface LocalDateTime {
  year: number;
  /** 1–12 */
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    // h23: some ICU versions print midnight as "24" with hour12: false.
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(zone, f);
  }
  return f;
}

const floorToSecond = (ms: number) => ms - (((ms % 1000) + 1000) % 1000);

/** The zone's offset at `ms` as Intl tells it (slow: a formatToParts call). */
function intlOffsetAt(zone: string, ms: number): number {
  const p = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0 };
  for (const part of formatter(zone).formatToParts(ms)) {
    if (part.type in p) p[part.type as keyof typeof p] = Number(part.value);
  }
  return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - floorToSecond(ms);
}

/**
 * Offsets are asked for millions of times (every offer checks a window), and Intl answers in microseconds.
 * So each zone's offset is kept at the start of every quarter hour it was asked about: where a quarter
 * hour begins and ends on the same offset, that is the offset throughout (no zone changes its offset twice
 * within 15 minutes); only a quarter hour holding a change asks Intl about the instant itself.
 */
const QUARTER_MS = 15 * 60_000;
const MAX_QUARTERS_PER_ZONE = 200_000;
const quarterOffsets = new Map<string, Map<number, number>>();

function quarterOffset(zone: string, quarter: number): number {
  let known = quarterOffsets.get(zone);
  if (!known) {
    known = new Map();
    quarterOffsets.set(zone, known);
  }
  let offset = known.get(quarter);
  if (offset === undefined) {
    if (known.size >= MAX_QUARTERS_PER_ZONE) known.clear();
    offset = intlOffsetAt(zone, quarter * QUARTER_MS);
    known.set(quarter, offset);
  }
  return offset;
}

/** Local time minus UTC at this instant, in ms (New York in winter: -5h). */
export function offsetAt(zone: string, ms: number): number {
  const quarter = Math.floor(ms / QUARTER_MS);
  const offset = quarterOffset(zone, quarter);
  return offset === quarterOffset(zone, quarter + 1) ? offset : intlOffsetAt(zone, ms);
}

export function localDateTime(zone: string, ms: number): LocalDateTime {
  const d = new Date(floorToSecond(ms) + offsetAt(zone, ms));
  return {
    year: d.getUTCFullYear(),
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
    second: d.getUTCSeconds(),
  };
}

/** The local calendar date of an instant, as a day number. */
export function localDay(zone: string, ms: number): number {
  return Math.floor((floorToSecond(ms) + offsetAt(zone, ms)) / DAY_MS);
}

/** 0 = Sunday … 6 = Saturday (1970-01-01, day 0, was a Thursday). */
export const weekdayOfDay = (day: number): number => (((day + 4) % 7) + 7) % 7;

export function dateOfDay(day: number): { year: number; month: number; day: number } {
  const d = new Date(day * DAY_MS);
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() };
}

/**
 * The instant at which the wall clock of `zone` shows `minuteOfDay` on local date `day`.
 * - Ambiguous (clocks fall back, the time happens twice): the earlier instant, so a window opens once.
 * - Nonexistent (clocks spring forward over it): the instant the clocks jump, i.e. the first valid
 *   instant after the requested time (02:30 on New York's spring-forward day → 03:00 EDT).
 */
export function instantOfLocal(zone: string, day: number, minuteOfDay: number): number {
  const wall = day * DAY_MS + minuteOfDay * MINUTE_MS;
  // An instant's offset is within ±1 day of the wall time, so these bracket every candidate offset.
  const offsets = new Set([
    offsetAt(zone, wall - DAY_MS),
    offsetAt(zone, wall),
    offsetAt(zone, wall + DAY_MS),
  ]);
  const candidates = [...offsets].map((o) => wall - o).sort((a, b) => a - b);
  const valid = candidates.filter((t) => offsetAt(zone, t) === wall - t);
  if (valid.length > 0) return valid[0]!;
  return firstChangeBetween(zone, candidates[0]!, candidates[candidates.length - 1]!);
}

/** Binary search (to the second) for the first instant in (lo, hi] whose offset differs from lo's. */
function firstChangeBetween(zone: string, lo: number, hi: number): number {
  const before = offsetAt(zone, lo);
  while (hi - lo > 1000) {
    const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
    if (offsetAt(zone, mid) === before) lo = mid;
    else hi = mid;
  }
  return hi;
}

const pad = (n: number, width = 2) => String(Math.abs(n)).padStart(width, '0');

/** `2024-03-10T03:00-04:00`: the local wall clock with its UTC offset (seconds only when not zero). */
export function formatLocal(zone: string, ms: number): string {
  const p = localDateTime(zone, ms);
  const offsetMin = Math.round(offsetAt(zone, ms) / MINUTE_MS);
  const sign = offsetMin < 0 ? '-' : '+';
  const seconds = p.second === 0 ? '' : `:${pad(p.second)}`;
  const offset = `${sign}${pad(Math.trunc(Math.abs(offsetMin) / 60))}:${pad(Math.abs(offsetMin) % 60)}`;
  return `${pad(p.year, 4)}-${pad(p.month)}-${pad(p.day)}T${pad(p.hour)}:${pad(p.minute)}${seconds}${offset}`;
}
