import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  currentOrNextWindow,
  isInWindow,
  type MaintenanceWindow,
  nextWindowStart,
  WEEKDAYS,
  type Weekday,
  windowAt,
  windowEndFor,
  windowZone,
} from './window.js';

const at = (iso: string) => Date.parse(iso);
const minutes = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3));
const win = (start: string, end: string, extra: Partial<MaintenanceWindow> = {}): MaintenanceWindow => ({
  start: minutes(start),
  end: minutes(end),
  timezone: 'device',
  days: WEEKDAYS,
  cron: null,
  ...extra,
});
/** The instance found from `from` as [start, end) in ISO, for readable expectations. */
const instance = (w: MaintenanceWindow, zone: string, from: string) => {
  const start = nextWindowStart(w, zone, at(from));
  return [new Date(start).toISOString(), new Date(windowEndFor(w, zone, start)).toISOString()];
};

const TWO_TO_FOUR = win('02:00', '04:00');

describe('spring forward: local times that do not exist', () => {
  it('a 02:00–04:00 window on 2024-03-10 opens at 03:00 EDT in New York and closes at 04:00 EDT', () => {
    expect(instance(TWO_TO_FOUR, 'America/New_York', '2024-03-10T05:00:00Z')).toEqual([
      '2024-03-10T07:00:00.000Z',
      '2024-03-10T08:00:00.000Z',
    ]);
    expect(isInWindow(TWO_TO_FOUR, 'America/New_York', at('2024-03-10T06:59:59Z'))).toBe(false);
    expect(isInWindow(TWO_TO_FOUR, 'America/New_York', at('2024-03-10T07:00:00Z'))).toBe(true);
    expect(isInWindow(TWO_TO_FOUR, 'America/New_York', at('2024-03-10T08:00:00Z'))).toBe(false);
  });
  it('the same window on 2025-03-09 opens at 03:00 EDT in New York', () => {
    expect(instance(TWO_TO_FOUR, 'America/New_York', '2025-03-09T05:00:00Z')).toEqual([
      '2025-03-09T07:00:00.000Z',
      '2025-03-09T08:00:00.000Z',
    ]);
  });
  it('the day before spring forward the window opens at 02:00 EST for two hours', () => {
    expect(instance(TWO_TO_FOUR, 'America/New_York', '2024-03-09T05:00:00Z')).toEqual([
      '2024-03-09T07:00:00.000Z',
      '2024-03-09T09:00:00.000Z',
    ]);
  });
  it('a window lying wholly in the skipped hour (02:00–02:30) does not open that day', () => {
    const w = win('02:00', '02:30');
    expect(instance(w, 'America/New_York', '2024-03-10T05:00:00Z')).toEqual([
      '2024-03-11T06:00:00.000Z',
      '2024-03-11T06:30:00.000Z',
    ]);
    expect(isInWindow(w, 'America/New_York', at('2024-03-10T07:00:00Z'))).toBe(false);
  });
  it('a window closing inside the skipped hour closes when the clocks jump', () => {
    expect(instance(win('01:30', '02:30'), 'America/New_York', '2024-03-10T05:00:00Z')).toEqual([
      '2024-03-10T06:30:00.000Z',
      '2024-03-10T07:00:00.000Z',
    ]);
  });
  it('Los Angeles opens at 03:00 PDT on 2024-03-10 and 2025-03-09', () => {
    expect(instance(TWO_TO_FOUR, 'America/Los_Angeles', '2024-03-10T08:00:00Z')).toEqual([
      '2024-03-10T10:00:00.000Z',
      '2024-03-10T11:00:00.000Z',
    ]);
    expect(instance(TWO_TO_FOUR, 'America/Los_Angeles', '2025-03-09T08:00:00Z')).toEqual([
      '2025-03-09T10:00:00.000Z',
      '2025-03-09T11:00:00.000Z',
    ]);
  });
  it('London skips 01:00–02:00 on 2024-03-31: 01:00–02:00 does not open, 02:00–04:00 opens at 02:00 BST', () => {
    expect(instance(win('01:00', '02:00'), 'Europe/London', '2024-03-31T00:00:00Z')).toEqual([
      '2024-04-01T00:00:00.000Z',
      '2024-04-01T01:00:00.000Z',
    ]);
    expect(instance(TWO_TO_FOUR, 'Europe/London', '2024-03-31T00:00:00Z')).toEqual([
      '2024-03-31T01:00:00.000Z',
      '2024-03-31T03:00:00.000Z',
    ]);
    expect(instance(win('00:30', '01:30'), 'Europe/London', '2025-03-30T00:00:00Z')).toEqual([
      '2025-03-30T00:30:00.000Z',
      '2025-03-30T01:00:00.000Z',
    ]);
  });
  it('Sydney springs forward in October (southern hemisphere): opens at 03:00 AEDT', () => {
    expect(instance(TWO_TO_FOUR, 'Australia/Sydney', '2024-10-05T12:00:00Z')).toEqual([
      '2024-10-05T16:00:00.000Z',
      '2024-10-05T17:00:00.000Z',
    ]);
    expect(instance(TWO_TO_FOUR, 'Australia/Sydney', '2025-10-04T12:00:00Z')).toEqual([
      '2025-10-04T16:00:00.000Z',
      '2025-10-04T17:00:00.000Z',
    ]);
  });
});

describe('fall back: local times that happen twice', () => {
  const ONE_TO_TWO = win('01:00', '02:00');
  it('a 01:00–02:00 window on 2024-11-03 opens once in New York, at 01:00 EDT, until 02:00 EST', () => {
    expect(instance(ONE_TO_TWO, 'America/New_York', '2024-11-03T04:00:00Z')).toEqual([
      '2024-11-03T05:00:00.000Z',
      '2024-11-03T07:00:00.000Z',
    ]);
    // 01:30 EST, the second pass through 01:30, belongs to the same instance.
    expect(windowAt(ONE_TO_TWO, 'America/New_York', at('2024-11-03T06:30:00Z'))?.start).toBe(
      at('2024-11-03T05:00:00Z'),
    );
    // It does not open again at 01:00 EST: the next opening is the following night.
    expect(nextWindowStart(ONE_TO_TWO, 'America/New_York', at('2024-11-03T05:00:01Z'))).toBe(
      at('2024-11-04T06:00:00Z'),
    );
  });
  it('a 01:00–01:30 window on fall-back day is open only during the first pass (EDT)', () => {
    const w = win('01:00', '01:30');
    expect(isInWindow(w, 'America/New_York', at('2024-11-03T05:15:00Z'))).toBe(true);
    expect(isInWindow(w, 'America/New_York', at('2024-11-03T06:15:00Z'))).toBe(false);
  });
  it('New York 2025-11-02 and Los Angeles 2024-11-03 / 2025-11-02 open once', () => {
    expect(instance(ONE_TO_TWO, 'America/New_York', '2025-11-02T04:00:00Z')).toEqual([
      '2025-11-02T05:00:00.000Z',
      '2025-11-02T07:00:00.000Z',
    ]);
    expect(instance(ONE_TO_TWO, 'America/Los_Angeles', '2024-11-03T07:00:00Z')).toEqual([
      '2024-11-03T08:00:00.000Z',
      '2024-11-03T10:00:00.000Z',
    ]);
    expect(instance(ONE_TO_TWO, 'America/Los_Angeles', '2025-11-02T07:00:00Z')).toEqual([
      '2025-11-02T08:00:00.000Z',
      '2025-11-02T10:00:00.000Z',
    ]);
  });
  it('London repeats 01:00–02:00 on 2024-10-27 and 2025-10-26: the window opens at 01:00 BST', () => {
    expect(instance(ONE_TO_TWO, 'Europe/London', '2024-10-26T22:00:00Z')).toEqual([
      '2024-10-27T00:00:00.000Z',
      '2024-10-27T02:00:00.000Z',
    ]);
    expect(instance(ONE_TO_TWO, 'Europe/London', '2025-10-25T22:00:00Z')).toEqual([
      '2025-10-26T00:00:00.000Z',
      '2025-10-26T02:00:00.000Z',
    ]);
  });
  it('Sydney falls back in April: 02:00–04:00 opens at 02:00 AEDT and closes at 04:00 AEST (3 hours)', () => {
    expect(instance(TWO_TO_FOUR, 'Australia/Sydney', '2024-04-06T12:00:00Z')).toEqual([
      '2024-04-06T15:00:00.000Z',
      '2024-04-06T18:00:00.000Z',
    ]);
    expect(instance(TWO_TO_FOUR, 'Australia/Sydney', '2025-04-05T12:00:00Z')).toEqual([
      '2025-04-05T15:00:00.000Z',
      '2025-04-05T18:00:00.000Z',
    ]);
  });
});

describe('zones without DST, midnight and weekdays', () => {
  it('Phoenix keeps 02:00–04:00 MST (09:00–11:00 UTC) through the US DST changes', () => {
    for (const day of ['2024-03-10', '2024-11-03', '2025-03-09', '2025-11-02', '2024-07-01']) {
      expect(instance(TWO_TO_FOUR, 'America/Phoenix', `${day}T07:00:00Z`)).toEqual([
        `${day}T09:00:00.000Z`,
        `${day}T11:00:00.000Z`,
      ]);
    }
  });
  it('a Friday 22:00–02:00 window opens Friday night and is still open early Saturday', () => {
    const w = win('22:00', '02:00', { days: ['fri'] });
    const zone = 'America/New_York';
    expect(instance(w, zone, '2024-06-05T00:00:00Z')).toEqual([
      '2024-06-08T02:00:00.000Z',
      '2024-06-08T06:00:00.000Z',
    ]);
    expect(isInWindow(w, zone, at('2024-06-08T05:00:00Z'))).toBe(true); // Sat 01:00 EDT
    expect(isInWindow(w, zone, at('2024-06-09T02:30:00Z'))).toBe(false); // Sat 22:30 EDT
    expect(nextWindowStart(w, zone, at('2024-06-08T06:00:00Z'))).toBe(at('2024-06-15T02:00:00Z'));
  });
  it('weekdays are local: a Monday 02:00 window in Auckland opens on Sunday in UTC', () => {
    const w = win('02:00', '04:00', { days: ['mon'] });
    expect(nextWindowStart(w, 'Pacific/Auckland', at('2024-06-08T00:00:00Z'))).toBe(
      at('2024-06-09T14:00:00Z'),
    );
  });
  it('a cron window opens only on the dates the cron allows (first of the month)', () => {
    const w = win('02:00', '04:00', { cron: '0 2 1 * *' });
    expect(instance(w, 'UTC', '2024-03-05T00:00:00Z')).toEqual([
      '2024-04-01T02:00:00.000Z',
      '2024-04-01T04:00:00.000Z',
    ]);
  });
  it('a cron window on 29 February waits for the next leap year', () => {
    const w = win('02:00', '04:00', { cron: '0 2 29 2 *' });
    expect(nextWindowStart(w, 'UTC', at('2024-03-01T00:00:00Z'))).toBe(at('2028-02-29T02:00:00Z'));
  });
});

describe('next window semantics', () => {
  const zone = 'America/Phoenix';
  it('nextWindowStart at the very opening instant returns that instant', () => {
    expect(nextWindowStart(TWO_TO_FOUR, zone, at('2024-06-01T09:00:00Z'))).toBe(at('2024-06-01T09:00:00Z'));
  });
  it('inside a window the next start is tomorrow, while currentOrNextWindow returns the open one', () => {
    const now = at('2024-06-01T10:00:00Z');
    expect(nextWindowStart(TWO_TO_FOUR, zone, now)).toBe(at('2024-06-02T09:00:00Z'));
    expect(currentOrNextWindow(TWO_TO_FOUR, zone, now)).toEqual({
      start: at('2024-06-01T09:00:00Z'),
      end: at('2024-06-01T11:00:00Z'),
    });
    expect(windowEndFor(TWO_TO_FOUR, zone, now)).toBe(at('2024-06-01T11:00:00Z'));
  });
  it("'device' windows use the device's zone, or UTC when it has none or an invalid one", () => {
    expect(windowZone({ timezone: 'device' }, 'Europe/London')).toBe('Europe/London');
    expect(windowZone({ timezone: 'device' }, null)).toBe('UTC');
    expect(windowZone({ timezone: 'device' }, 'Mars/Olympus')).toBe('UTC');
    expect(windowZone({ timezone: 'America/Phoenix' }, 'Europe/London')).toBe('America/Phoenix');
  });
});

const ZONES = [
  'America/New_York',
  'America/Los_Angeles',
  'America/Phoenix',
  'Europe/London',
  'Australia/Sydney',
  'Australia/Lord_Howe', // 30-minute DST shift
  'Asia/Kolkata',
  'UTC',
];
const windowArb = fc
  .record({
    start: fc.integer({ min: 0, max: 1439 }),
    end: fc.integer({ min: 0, max: 1439 }),
    days: fc.subarray([...WEEKDAYS] as Weekday[], { minLength: 1 }),
  })
  .filter((w) => w.start !== w.end)
  .map((w): MaintenanceWindow => ({ ...w, timezone: 'device', cron: null }));
const instantArb = fc.integer({ min: at('2024-01-01T00:00:00Z'), max: at('2026-01-01T00:00:00Z') });
// Instants near the 2024/2025 transitions of these zones, where the rules are most likely to break.
const TRANSITIONS = [
  '2024-03-10T07:00:00Z',
  '2024-11-03T06:00:00Z',
  '2024-03-31T01:00:00Z',
  '2024-10-27T01:00:00Z',
  '2024-04-06T16:00:00Z',
  '2024-10-05T16:00:00Z',
  '2025-03-09T10:00:00Z',
  '2025-11-02T09:00:00Z',
].map(at);
const nearTransitionArb = fc
  .tuple(fc.constantFrom(...TRANSITIONS), fc.integer({ min: -30 * 3_600_000, max: 30 * 3_600_000 }))
  .map(([t, d]) => t + d);

describe('properties', () => {
  it('isInWindow(now) ⇔ now lies in one of the instances enumerated by nextWindowStart/windowEndFor', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ZONES),
        windowArb,
        fc.oneof(instantArb, nearTransitionArb),
        (zone, w, now) => {
          let inside = false;
          let cursor = now - 8 * 86_400_000;
          while (cursor <= now) {
            const start = nextWindowStart(w, zone, cursor);
            if (start > now) break;
            const end = windowEndFor(w, zone, start);
            expect(end).toBeGreaterThan(start);
            expect(end - start).toBeLessThanOrEqual(25 * 3_600_000);
            if (now < end) inside = true;
            cursor = end;
          }
          expect(isInWindow(w, zone, now)).toBe(inside);
        },
      ),
      { numRuns: 300 },
    );
  });
  it('the next opening is at or after now, and the window is open at that instant', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ZONES),
        windowArb,
        fc.oneof(instantArb, nearTransitionArb),
        (zone, w, now) => {
          const start = nextWindowStart(w, zone, now);
          expect(start).toBeGreaterThanOrEqual(now);
          expect(windowAt(w, zone, start)?.start).toBe(start);
        },
      ),
      { numRuns: 300 },
    );
  });
  it('in Phoenix (fixed UTC-7) membership equals plain wall-clock arithmetic', () => {
    const dayOf = (d: number): Weekday => WEEKDAYS[(((d + 3) % 7) + 7) % 7]!; // day 0 was a Thursday
    fc.assert(
      fc.property(windowArb, instantArb, (w, now) => {
        const local = now - 7 * 3_600_000;
        const day = Math.floor(local / 86_400_000);
        const minute = Math.floor((local - day * 86_400_000) / 60_000);
        const opens = (d: number) => w.days.includes(dayOf(d));
        const expected =
          w.end > w.start
            ? opens(day) && minute >= w.start && minute < w.end
            : (opens(day) && minute >= w.start) || (opens(day - 1) && minute < w.end);
        expect(isInWindow(w, 'America/Phoenix', now)).toBe(expected);
      }),
      { numRuns: 1000 },
    );
  });
});
