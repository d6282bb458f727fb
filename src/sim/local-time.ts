/**
 * Device-local days for the connectivity profiles: a device's day d (days since 1970-01-01 in its own zone)
 * and the UTC instant of a local time on it. Offsets are cached per zone and hour, so a million devices
 * in four zones cost a few hundred Intl calls, not millions.
 */
import { offsetAt, weekdayOfDay } from '../core/rollout/zone.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const offsets = new Map<string, number>();

/** The zone's offset from UTC (ms, east positive) during the hour that contains `at`, cached per zone and hour. */
export function utcOffsetMs(zone: string, at: number): number {
  const hour = Math.floor(at / HOUR);
  const key = `${zone}\n${hour}`;
  let offset = offsets.get(key);
  if (offset === undefined) {
    offset = offsetAt(zone, hour * HOUR);
    offsets.set(key, offset);
  }
  return offset;
}

/** The device-local day number that contains `at`. */
export const localDay = (zone: string, at: number): number => Math.floor((at + utcOffsetMs(zone, at)) / DAY);

/** The UTC instant of `minutes` after local midnight of local day `day` (the offset of that day's noon). */
export function localToUtc(zone: string, day: number, minutes: number): number {
  const noonGuess = day * DAY + 12 * HOUR;
  const offset = utcOffsetMs(zone, noonGuess - utcOffsetMs(zone, noonGuess));
  return day * DAY + minutes * 60_000 - offset;
}

/** 0 = Sunday … 6 = Saturday, for a local day number. */
export const weekday = weekdayOfDay;
