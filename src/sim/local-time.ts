/**
 * Device-local days for the connectivity profiles: a device's day d (days since 1970-01-01 in its own zone)
 * and the UTC instant of a local time on it. The profiles ask millions of times for a handful of zones, so
 * each zone's offsets are kept by hour and by day (numbers as keys: no strings built per call).
 */
import { offsetAt, weekdayOfDay } from '../core/rollout/zone.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;

interface ZoneOffsets {
  /** Offset during the hour, by hour since the epoch. */
  hour: Map<number, number>;
  /** Offset at local noon, by local day. */
  noon: Map<number, number>;
}

const zones = new Map<string, ZoneOffsets>();

function offsetsOf(zone: string): ZoneOffsets {
  let z = zones.get(zone);
  if (!z) {
    z = { hour: new Map(), noon: new Map() };
    zones.set(zone, z);
  }
  return z;
}

/** The zone's offset from UTC (ms, east positive) during the hour that contains `at`. */
export function utcOffsetMs(zone: string, at: number): number {
  const hour = Math.floor(at / HOUR);
  const z = offsetsOf(zone);
  let offset = z.hour.get(hour);
  if (offset === undefined) {
    offset = offsetAt(zone, hour * HOUR);
    z.hour.set(hour, offset);
  }
  return offset;
}

/** The device-local day number that contains `at`. */
export const localDay = (zone: string, at: number): number => Math.floor((at + utcOffsetMs(zone, at)) / DAY);

/** The UTC instant of `minutes` after local midnight of local day `day` (the offset of that day's noon). */
export function localToUtc(zone: string, day: number, minutes: number): number {
  const z = offsetsOf(zone);
  let offset = z.noon.get(day);
  if (offset === undefined) {
    const noonGuess = day * DAY + 12 * HOUR;
    offset = utcOffsetMs(zone, noonGuess - utcOffsetMs(zone, noonGuess));
    z.noon.set(day, offset);
  }
  // Whole milliseconds: the server's clock (and the instants it stores) never holds a fraction.
  return day * DAY + Math.round(minutes * 60_000) - offset;
}

/** 0 = Sunday … 6 = Saturday, for a local day number. */
export const weekday = weekdayOfDay;
