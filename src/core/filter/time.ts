/** Absolute times in filters: an ISO-8601 date (UTC midnight) or an instant with an explicit zone. */

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const INSTANT =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:(Z)|([+-])(\d{2}):(\d{2}))$/i;

export interface Instant {
  ms: number;
  /** A bare date: `last_seen = 2024-10-20` means that UTC day. */
  dateOnly: boolean;
}

const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const leap = (y: number) => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
const daysIn = (y: number, month: number) => (month === 2 && leap(y) ? 29 : DAYS[month - 1]!);

function utc(y: number, mo: number, d: number, h = 0, mi = 0, s = 0, ms = 0): number | undefined {
  if (mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) || h > 23 || mi > 59 || s > 59) return undefined;
  const date = new Date(Date.UTC(2000, mo - 1, d, h, mi, s, ms));
  date.setUTCFullYear(y); // Date.UTC maps years 0–99 to 1900–1999
  return date.getTime();
}

/**
 * `2024-10-20`, `2024-10-20T14:00Z`, `2024-10-20T14:00:00.5+02:00`; a time without a zone is refused as
 * ambiguous. Undefined when the text is not such a time or names a day that does not exist.
 */
export function parseInstant(text: string): Instant | undefined {
  const date = DATE.exec(text);
  if (date) {
    const ms = utc(Number(date[1]), Number(date[2]), Number(date[3]));
    return ms === undefined ? undefined : { ms, dateOnly: true };
  }
  const m = INSTANT.exec(text);
  if (!m) return undefined;
  const fraction = Number((m[7] ?? '').padEnd(3, '0').slice(0, 3));
  const local = utc(
    Number(m[1]),
    Number(m[2]),
    Number(m[3]),
    Number(m[4]),
    Number(m[5]),
    Number(m[6] ?? 0),
    fraction,
  );
  if (local === undefined) return undefined;
  if (m[8]) return { ms: local, dateOnly: false };
  const offsetH = Number(m[10]);
  const offsetM = Number(m[11]);
  if (offsetH > 23 || offsetM > 59) return undefined;
  const offset = (offsetH * 60 + offsetM) * 60_000;
  return { ms: m[9] === '-' ? local + offset : local - offset, dateOnly: false };
}
