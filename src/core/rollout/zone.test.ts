import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { localDateTime, localDay, offsetAt } from './zone.js';

/** What Intl says, straight: the reference the cached lookup must always agree with. */
function intlLocal(zone: string, ms: number) {
  const f = new Intl.DateTimeFormat('en-US', {
    timeZone: zone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  });
  const p: Record<string, number> = {};
  for (const part of f.formatToParts(ms)) p[part.type] = Number(part.value);
  return { year: p.year, month: p.month, day: p.day, hour: p.hour, minute: p.minute, second: p.second };
}

const ZONES = [
  'America/New_York',
  'America/Phoenix',
  'Europe/London',
  'Australia/Lord_Howe', // a 30-minute DST shift
  'Asia/Kolkata',
  'Pacific/Chatham', // +12:45 / +13:45
  'America/St_Johns', // -3:30, changes at 02:00 local
  'UTC',
];

describe('zone offsets (cached per quarter hour)', () => {
  it('agree with Intl at random instants, transitions included', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ZONES),
        fc.integer({ min: Date.UTC(1990, 0, 1), max: Date.UTC(2040, 0, 1) }),
        (zone, ms) => {
          expect(localDateTime(zone, ms)).toEqual(intlLocal(zone, ms));
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('agree with Intl second by second across a DST change', () => {
    // New York springs forward at 2024-03-10T07:00:00Z and falls back at 2024-11-03T06:00:00Z.
    for (const change of [Date.UTC(2024, 2, 10, 7), Date.UTC(2024, 10, 3, 6)]) {
      for (let ms = change - 20 * 60_000; ms <= change + 20 * 60_000; ms += 7_000) {
        expect(localDateTime('America/New_York', ms)).toEqual(intlLocal('America/New_York', ms));
      }
    }
    expect(offsetAt('America/New_York', Date.UTC(2024, 2, 10, 7) - 1)).toBe(-5 * 3_600_000);
    expect(offsetAt('America/New_York', Date.UTC(2024, 2, 10, 7))).toBe(-4 * 3_600_000);
  });

  it('gives the local day of an instant', () => {
    // 2024-03-10T03:59Z is still 9 March in New York (22:59 EST).
    expect(localDay('America/New_York', Date.UTC(2024, 2, 10, 3, 59))).toBe(Date.UTC(2024, 2, 9) / 86_400_000);
    expect(localDay('America/New_York', Date.UTC(2024, 2, 10, 5, 0))).toBe(Date.UTC(2024, 2, 10) / 86_400_000);
  });
});
