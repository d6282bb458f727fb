import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hourCells, MERGE_GAP_MS, onlineIntervals, type StatusChange } from './presence.js';
import { changesFromDays, type StatusDay, summarizeDay } from './status-days.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const D0 = Date.parse('2026-03-02T00:00:00Z') / DAY;

const cellsOf = (changes: readonly StatusChange[], online: boolean, from: number, to: number) =>
  hourCells(onlineIntervals({ from, changes, online, lastSeen: null }, to), from, to);

/** Each day summed up in turn, its start the previous day's end, as retention does. */
function summarize(days: number, startOnline: boolean, changes: readonly StatusChange[]): StatusDay[] {
  const out: StatusDay[] = [];
  let on = startOnline;
  for (let d = D0; d < D0 + days; d++) {
    const s = summarizeDay(
      d,
      on,
      changes.filter((c) => c.at >= d * DAY && c.at < (d + 1) * DAY),
    );
    out.push(s);
    on = s.endOnline;
  }
  return out;
}

describe('status days', () => {
  it('a device online 09:00–17:30 has hours 9 to 17 online, 10 to 17 at their start, 8.5 h online', () => {
    const at = (h: number) => D0 * DAY + h * HOUR;
    const day = summarizeDay(D0, false, [
      { at: at(9), online: true },
      { at: at(17.5), online: false },
    ]);
    const hours = (mask: number) => [...Array(24).keys()].filter((h) => mask & (1 << h));
    expect(hours(day.onlineHours)).toEqual([8, 9, 10, 11, 12, 13, 14, 15, 16, 17]);
    expect(hours(day.startHours)).toEqual([9, 10, 11, 12, 13, 14, 15, 16, 17]);
    expect(day).toMatchObject({ endOnline: false, onlineMs: 8.5 * HOUR, changes: 2 });
  });

  it('a device online all day with no change is online in every hour and at the end', () => {
    const day = summarizeDay(D0, true, []);
    expect(day).toMatchObject({
      onlineHours: 0xffffff,
      startHours: 0xffffff,
      endOnline: true,
      onlineMs: DAY,
    });
  });

  it('the changes made back from the days give the hour cells the events gave', () => {
    const days = 4;
    // Change instants away from midnight by more than the merge gap (a gap across an aggregated midnight is
    // the documented difference).
    const minute = fc.integer({ min: 6, max: 24 * 60 - 6 });
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.uniqueArray(
          fc
            .tuple(fc.integer({ min: 0, max: days - 1 }), minute)
            .map(([d, m]) => (D0 + d) * DAY + m * 60_000),
          { maxLength: 40 },
        ),
        fc.integer({ min: 0, max: days * 24 - 1 }),
        (startOnline, instants, fromHour) => {
          instants.sort((a, b) => a - b);
          const changes = instants.map((at, i) => ({ at, online: (i % 2 === 0) !== startOnline }));
          const made = changesFromDays(summarize(days, startOnline, changes));
          // Read from any hour on, as the ETA reads from a look-back's start.
          const from = D0 * DAY + fromHour * HOUR;
          const to = (D0 + days) * DAY;
          const fromOn = (cs: readonly StatusChange[]) => cs.filter((c) => c.at >= from);
          const onAt = (cs: readonly StatusChange[]) => {
            const last = cs.filter((c) => c.at < from).pop();
            return last ? last.online : startOnline;
          };
          const expected = cellsOf(fromOn(changes), onAt(changes), from, to);
          const got = cellsOf(fromOn(made), onAt(made), from, to);
          expect(got).toEqual(expected);
        },
      ),
    );
  });

  it('a gap under the merge gap across midnight is the one difference, in the next hour start only', () => {
    const midnight = (D0 + 1) * DAY;
    const changes = [
      { at: midnight - 2 * 60_000, online: false },
      { at: midnight + MERGE_GAP_MS - 4 * 60_000, online: true },
    ];
    const days = summarize(2, true, changes);
    const events = cellsOf(changes, true, D0 * DAY, midnight + DAY);
    const made = cellsOf(changesFromDays(days), true, D0 * DAY, midnight + DAY);
    expect(made.online).toEqual(events.online);
    expect(events.atStart[24]).toBe(1);
    expect(made.atStart[24]).toBe(0);
    expect([...made.atStart.slice(25)]).toEqual([...events.atStart.slice(25)]);
  });

  it('a day followed by a missing day ends offline at its end', () => {
    const full = summarizeDay(D0, true, []);
    const later = summarizeDay(D0 + 2, false, []);
    expect(changesFromDays([full, later])).toEqual([
      { at: D0 * DAY, online: true },
      { at: (D0 + 1) * DAY, online: false },
    ]);
  });
});
