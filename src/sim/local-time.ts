/**
 * Device-local days for the connectivity profiles: a device's day d (days since 1970-01-01 in its own zone)
 * and the UTC instant of a local time on it. Offsets are cached per zone and hour, so a million devices
 * in four zones cost a few hundred Intl calls, not millions.
 */
const DAY = 86_400_000;
const HOUR = 3_600_000;
const formats = new Map<string, Intl.DateTimeFormat>();
const offsets = new Map<string, number>();

function format(zone: string): Intl.DateTimeFormat {
  let f = formats.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
    });
    formats.set(zone, f);
  }
  return f;
}

/** The zone's offset from UTC (ms, east positive) during the hour that contains `at`. */
export function utcOffsetMs(zone: string, at: number): number {
  const hour = Math.floor(at / HOUR);
  const key = `${zone}\n${hour}`;
  const cached = offsets.get(key);
  if (cached !== undefined) return cached;
  const parts = Object.fromEntries(
    format(zone)
      .formatToParts(hour * HOUR)
      .map((p) => [p.type, p.value]),
  );
  const local = Date.UTC(
    Number(parts.year),
    Number(parts.month) - 1,
    Number(parts.day),
    Number(parts.hour),
    Number(parts.minute),
  );
  const offset = local - hour * HOUR;
  offsets.set(key, offset);
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

/** 0 = Sunday … 6 = Saturday, for a local day number (day 0 was a Thursday). */
export const weekday = (day: number): number => (((day + 4) % 7) + 7) % 7;
