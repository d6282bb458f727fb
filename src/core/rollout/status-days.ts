/**
 * A device's status history, one row per UTC day, for the days whose raw `device.status` events retention
 * has removed (see docs/operations.md, "Event retention"). Pure: the store reads and writes the rows.
 *
 * The ETA (presence.ts) only ever looks at a history through its hour cells: for each UTC hour, online at some
 * moment of it, and online at the instant it began. A day keeps exactly those two bit masks, so the changes
 * made back from them (`changesFromDays`) give the same cells as the events did. What is lost is where inside
 * an hour a change fell, and an offline gap of under MERGE_GAP_MS across an aggregated midnight (the day is
 * summarized alone, so the gap is not closed): the hour after that midnight then counts as not online at its
 * start.
 */

import { HOUR_MS, hourCells, onlineIntervals, type StatusChange } from './presence.js';
import { DAY_MS } from './zone.js';

/** How far back the status history is read (the ETA's look-back): older days are of no use to anyone. */
export const STATUS_LOOKBACK_MS = 14 * DAY_MS;

export interface StatusDay {
  /** Days since 1970-01-01 (UTC). */
  day: number;
  /** Bit h: online at some moment of UTC hour h (its end included, as presence.ts counts). */
  onlineHours: number;
  /** Bit h: online at the instant UTC hour h began. */
  startHours: number;
  /** Online when the day ended. */
  endOnline: boolean;
  /** Time online during the day, short offline gaps closed (ms). */
  onlineMs: number;
  /** Status changes recorded that day. */
  changes: number;
}

export const dayOf = (at: number): number => Math.floor(at / DAY_MS);

/**
 * Sums up day `day` of a device that was online at its start or not, from the changes recorded in it
 * (oldest first, all within the day).
 */
export function summarizeDay(day: number, startOnline: boolean, changes: readonly StatusChange[]): StatusDay {
  const from = day * DAY_MS;
  const to = from + DAY_MS;
  // Only the flips, from the known start: onlineIntervals takes the state before the first change to be its
  // opposite.
  const flips: StatusChange[] = startOnline ? [{ at: from, online: true }] : [];
  let on = startOnline;
  for (const c of changes) {
    if (c.at < from || c.at >= to || c.online === on) continue;
    on = c.online;
    flips.push(c);
  }
  const intervals = onlineIntervals({ from, changes: flips, online: startOnline, lastSeen: null }, to);
  const cells = hourCells(intervals, from, to);
  let onlineHours = 0;
  let startHours = 0;
  for (let h = 0; h < 24; h++) {
    if (cells.online[h]) onlineHours |= 1 << h;
    if (cells.atStart[h]) startHours |= 1 << h;
  }
  const onlineMs = intervals.reduce((sum, [a, b]) => sum + Math.min(b, to) - Math.max(a, from), 0);
  return { day, onlineHours, startHours, endOnline: on, onlineMs, changes: changes.length };
}

/** Where in an hour a change made back from a day falls, when all that is known is that it fell inside. */
const CAME_ONLINE_AT = HOUR_MS / 2;
const WENT_OFFLINE_AT = (HOUR_MS * 3) / 4;

/**
 * Changes that give back each day's hour cells (oldest day first, each day once). A day followed by a day
 * not given ends offline at its end; the last day's end state carries on into whatever follows.
 */
export function changesFromDays(days: readonly StatusDay[]): StatusChange[] {
  const out: StatusChange[] = [];
  let on = false;
  days.forEach((d, i) => {
    const from = d.day * DAY_MS;
    for (let h = 0; h < 24; h++) {
      const start = from + h * HOUR_MS;
      if (!(d.onlineHours & (1 << h))) {
        if (on) out.push({ at: start, online: false });
        on = false;
        continue;
      }
      if (!on) out.push({ at: d.startHours & (1 << h) ? start : start + CAME_ONLINE_AT, online: true });
      on = true;
      const onAtNext = h < 23 ? (d.startHours & (1 << (h + 1))) !== 0 : d.endOnline;
      if (!onAtNext) {
        out.push({ at: start + WENT_OFFLINE_AT, online: false });
        on = false;
      }
    }
    const next = days[i + 1];
    if (on && next !== undefined && next.day !== d.day + 1) {
      out.push({ at: from + DAY_MS, online: false });
      on = false;
    }
  });
  return out;
}
