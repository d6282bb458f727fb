/**
 * When will a device connect? Learnt from the status history the store keeps (its `device.status` events),
 * for the ETA. Pure: the history and the time come in.
 *
 * - A device's history becomes hour cells: for each hour it has been known (two weeks at most), whether it was
 *   online at some moment of it. Offline gaps of a few minutes are online time: a server that samples its
 *   devices (the simulator's syncs) records an offline/online pair at one instant for a device that stayed on.
 * - Days: each local day a device is either away the whole day (probability 1 − a, per weekday: a van parked
 *   on Sunday, a shop closed) or keeps its daily pattern, online in local hour h with probability q(h). The
 *   fleet's a and q are learnt at once from every device-day (EM): a day without a sighting is either a day
 *   away or bad luck in the hours observed. Days away are believed only when clearly more days go unseen than
 *   bad luck explains, since a few percent of "away" decides the tail of a large fleet.
 * - Hours: an online device goes offline as often as it did at that hour; an offline one comes back as often
 *   as it is online at that hour, times how much likelier a return is after so many hours offline (outages
 *   end, nights do not end before the morning).
 * - Each device: its own hours pooled with the fleet's, its own share of days seen with the fleet's as far as
 *   devices in this fleet differ beyond chance; devices of a kind (hardware type) are learnt together. A
 *   device with little history is thus its fleet, not an unknown.
 * - Gaps in what anyone was observed in: an hour takes its nearest observed hours, a weekday the observed
 *   ones of its kind (working day or weekend).
 * - A device not seen yet today: the hours gone by without it make a day away more likely (Bayes).
 *
 * Over 500 lines because the model is one estimation (the EM over days and hours and the per-device pooling
 * share their cells and weights); split, each half would only make sense beside the other.
 */
import { isValidTimeZone } from '../device.js';
import { DAY_MS, offsetAt, weekdayOfDay } from './zone.js';

export const HOUR_MS = 3_600_000;
const HOURS = 24;
/** Shorter offline gaps are online time (a sampled server's offline/online pairs, a missed heartbeat). */
export const MERGE_GAP_MS = 5 * 60_000;
/** A device's own hours weigh against the fleet's as this many observations of each. */
const OWN_HOURS_WEIGHT = 2;
/** How rare leaving is taken to be at an hour until seen, in observations of staying. */
const FLEET_WEIGHT = 10;
const EM_ROUNDS = 30;
/** A kind of device is learnt on its own from this many devices up. */
const MIN_KIND = 50;
/** Offline hours told apart: an outage's end is likelier the longer it has lasted, up to this. */
export const MAX_OFF = 12;
/** The duration effect weighs against "none" as this many returns expected. */
const DURATION_WEIGHT = 3;
/** An hour in which devices are seen this often tells something about a day without a sighting. */
const TELLING_HOUR = 0.2;
/** Fewer days away than this share are taken for none. */
const MIN_AWAY = 0.03;

export interface StatusChange {
  at: number;
  /** true: it came online; false: it went offline (or abandoned). */
  online: boolean;
}

export interface DeviceHistory {
  /** Nothing is known before: the look-back's start or the device's registration, whichever is later. */
  from: number;
  /** Status changes since `from`, oldest first. */
  changes: readonly StatusChange[];
  /** Online now. */
  online: boolean;
  lastSeen: number | null;
  timezone?: string | null;
  /** Devices of a kind (hardware type) are pooled together. */
  kind?: string | null;
}

/** What is learnt of one device. */
export interface DevicePresence {
  zone: string;
  online: boolean;
  /**
   * Whole hours offline since its last online one (up to MAX_OFF); 0 while online, or offline since the last
   * hour only (which may be a gap of minutes: a sampled server cannot tell).
   */
  offlineFor: number;
  /** Seen online during its current local day. */
  seenToday: boolean;
  /** P(online at some moment of local hour h | a day it is around), h = 0…23. */
  hourly: readonly number[];
  /** P(offline all of local hour h | online the hour before). */
  leaves: readonly number[];
  /**
   * P(offline all of local hour h | online the hour before, offline as it began): gone for good, or a gap of
   * minutes (a shop's at noon, or its closing at night).
   */
  lingers: readonly number[];
  /** P(around at all on a local day), per weekday (0 = Sunday). */
  activity: readonly number[];
  /** P(away all of today): a device not seen yet today, by the hours gone by without it (Bayes). */
  awayToday: number;
  /**
   * Offline the hour before, it is back in local hour h with probability hourly[h] × duration[d], d the hours
   * it has been offline (1…MAX_OFF): an outage of a few hours ends, a van parked for the night is not back
   * before the hours it is usually out (the fleet's: how often devices came back against their hours).
   */
  duration: readonly number[];
}

export interface FleetPresence {
  hourly: number[];
  activity: number[];
  duration: number[];
  devices: DevicePresence[];
}

const zoneOf = (tz: string | null | undefined) => (tz && isValidTimeZone(tz) ? tz : 'UTC');

/** Local hour of day and local day number of UTC hours, per zone, each offset asked for once. */
export class LocalHours {
  private readonly offsets = new Map<string, Map<number, number>>();

  private offset(zone: string, hour: number): number {
    let known = this.offsets.get(zone);
    if (!known) {
      known = new Map();
      this.offsets.set(zone, known);
    }
    let o = known.get(hour);
    if (o === undefined) {
      o = offsetAt(zone, hour * HOUR_MS);
      known.set(hour, o);
    }
    return o;
  }

  /** Local hour (0–23) at the start of UTC hour number `hour` (hours since 1970). */
  hourOf(zone: string, hour: number): number {
    const local = hour * HOUR_MS + this.offset(zone, hour);
    return Math.floor((((local % DAY_MS) + DAY_MS) % DAY_MS) / HOUR_MS);
  }

  dayOf(zone: string, hour: number): number {
    return Math.floor((hour * HOUR_MS + this.offset(zone, hour)) / DAY_MS);
  }

  /** Local hour and day of `count` consecutive UTC hours from `first`. */
  table(zone: string, first: number, count: number): { hour: Uint8Array; day: Int32Array } {
    const hour = new Uint8Array(count);
    const day = new Int32Array(count);
    for (let k = 0; k < count; k++) {
      hour[k] = this.hourOf(zone, first + k);
      day[k] = this.dayOf(zone, first + k);
    }
    return { hour, day };
  }
}

/** Online intervals [start, end) within [from, now], short offline gaps closed. */
export function onlineIntervals(h: DeviceHistory, now: number): Array<[number, number]> {
  const changes = h.changes.filter((c) => c.at >= h.from && c.at <= now);
  const out: Array<[number, number]> = [];
  // Before its first recorded change a device was in the opposite state; without any, in the state it is in.
  let on = changes.length > 0 ? !changes[0]!.online : h.online;
  let since = h.from;
  for (const c of changes) {
    if (c.online === on) continue;
    on = c.online;
    if (on) {
      const last = out[out.length - 1];
      if (last && c.at - last[1] < MERGE_GAP_MS) since = out.pop()![0];
      else since = c.at;
    } else out.push([since, c.at]);
  }
  if (on) out.push([since, now]);
  return out;
}

/**
 * One cell per UTC hour from the first whole hour after `from` to the one holding `now`: online at some moment
 * of it, its end included. A device first heard of at 09:00 came online by 09:00: a server that samples its
 * devices hourly records it at 09:00 although it may have connected at 08:10; a heartbeat-driven one is not
 * affected. The hour holding `now` counts once half of it has gone by (whatever happened in it: counting it
 * early only when the device showed up would make the hour look better than it is).
 */
export function hourCells(
  intervals: ReadonlyArray<readonly [number, number]>,
  from: number,
  now: number,
): Cells {
  const first = Math.ceil(from / HOUR_MS);
  const lastStart = Math.floor(now / HOUR_MS);
  const count = Math.max(0, lastStart - first + (now - lastStart * HOUR_MS >= HOUR_MS / 2 ? 1 : 0));
  const online = new Uint8Array(count);
  const atStart = new Uint8Array(count);
  let j = 0;
  for (let c = 0; c < count; c++) {
    const start = (first + c) * HOUR_MS;
    const end = Math.min(start + HOUR_MS, now);
    while (j < intervals.length && intervals[j]![1] <= start) j++;
    online[c] = j < intervals.length && intervals[j]![0] <= end && intervals[j]![1] > start ? 1 : 0;
    atStart[c] = j < intervals.length && intervals[j]![0] <= start ? 1 : 0;
  }
  return { first, online, atStart };
}

/**
 * A device's hour cells: consecutive UTC hours from hour number `first` (hours since 1970), 1 if online at
 * some moment of the hour; and whether it was online at the instant each hour began.
 */
export interface Cells {
  first: number;
  online: Uint8Array;
  atStart: Uint8Array;
}

/** One local day of one device: the local hours observed and those it was online in (bit masks). */
interface DeviceDay {
  device: number;
  day: number;
  weekday: number;
  /** P(the device was around that day): 1 if seen, else the EM's estimate. */
  around: number;
  observed: number;
  online: number;
}

const bits = (mask: number, f: (h: number) => void) => {
  for (let h = 0; h < HOURS; h++) if (mask & (1 << h)) f(h);
};

/** P(no online cell in the observed hours | around that day). */
function missAll(mask: number, hourly: readonly number[]): number {
  let miss = 1;
  bits(mask, (h) => {
    miss *= 1 - hourly[h]!;
  });
  return miss;
}

/** Hours never observed take their nearest observed ones (around the clock); none observed: `none`. */
function fillHours(values: ReadonlyArray<number | null>, none: number): number[] {
  if (values.every((v) => v === null)) return values.map(() => none);
  const n = values.length;
  return values.map((v, h) => {
    if (v !== null) return v;
    let back = 1;
    while (values[(h - back + n) % n] === null) back++;
    let ahead = 1;
    while (values[(h + ahead) % n] === null) ahead++;
    return (values[(h - back + n) % n]! * ahead + values[(h + ahead) % n]! * back) / (back + ahead);
  });
}

const isWeekend = (weekday: number) => weekday === 0 || weekday === 6;

/**
 * What each device's history says, learnt kind by kind (hardware type): a POS terminal is pooled with POS
 * terminals, not with the signage next to it. Kinds with few devices are learnt together.
 * `histories` may be a sample of the fleet.
 */
export function learnPresence(
  histories: readonly DeviceHistory[],
  now: number,
  clock = new LocalHours(),
): DevicePresence[] {
  const byKind = new Map<string, number[]>();
  histories.forEach((h, i) => {
    const kind = h.kind ?? '';
    if (!byKind.has(kind)) byKind.set(kind, []);
    byKind.get(kind)!.push(i);
  });
  const groups: number[][] = [];
  const rest: number[] = [];
  for (const members of byKind.values()) {
    if (members.length >= MIN_KIND) groups.push(members);
    else rest.push(...members);
  }
  if (rest.length > 0) groups.push(rest);
  const out: DevicePresence[] = new Array(histories.length);
  for (const members of groups) {
    const learnt = learnFleet(
      members.map((i) => histories[i]!),
      now,
      clock,
    );
    members.forEach((i, k) => {
      out[i] = learnt.devices[k]!;
    });
  }
  return out;
}

/**
 * One fleet's activity per weekday and hourly pattern (EM over every device-day), then each device's own.
 */
export function learnFleet(
  histories: readonly DeviceHistory[],
  now: number,
  clock = new LocalHours(),
): FleetPresence {
  const nowHour = Math.floor(now / HOUR_MS);
  const days: DeviceDay[] = [];
  const zones = histories.map((h) => zoneOf(h.timezone));
  const cellsOf = histories.map((h) => hourCells(onlineIntervals(h, now), h.from, now));
  // Local hours and days of every hour looked at, once per zone.
  const base = Math.min(nowHour, ...cellsOf.map((c) => c.first));
  const tables = new Map<string, { hour: Uint8Array; day: Int32Array }>();
  for (const zone of zones)
    if (!tables.has(zone)) tables.set(zone, clock.table(zone, base, nowHour - base + 1));
  const perDevice = cellsOf.map((cells, device) => {
    const mine: DeviceDay[] = [];
    const t = tables.get(zones[device]!)!;
    for (let c = 0, k = cells.first - base; c < cells.online.length; c++, k++) {
      const day = t.day[k]!;
      let d = mine[mine.length - 1];
      if (d?.day !== day) {
        d = { device, day, weekday: weekdayOfDay(day), around: 1, observed: 0, online: 0 };
        mine.push(d);
        days.push(d);
      }
      const bit = 1 << t.hour[k]!;
      d.observed |= bit;
      if (cells.online[c]) d.online |= bit;
    }
    return mine;
  });

  // Each device's hours are its own cells pooled with the fleet's rate: in a mixed fleet a shop and a van differ.
  // A day is judged with its device's other days only (leave one out), or every device would explain itself.
  const n = histories.length;
  const ownOnline = perDevice.map((mine) => hourTotals(mine, () => 1).map((t) => t.online));
  const rates = (weight: (d: DeviceDay) => number) => {
    const observed = perDevice.map(() => new Float64Array(HOURS));
    const fleet = Array.from({ length: HOURS }, () => ({ observed: 0, online: 0 }));
    for (const d of days) {
      const w = weight(d);
      bits(d.observed, (h) => {
        observed[d.device]![h]! += w;
        fleet[h]!.observed += w;
      });
    }
    for (const online of ownOnline) {
      for (let h = 0; h < HOURS; h++) fleet[h]!.online += online[h]!;
    }
    const hourly = fillHours(
      fleet.map((t) => (t.observed >= 1 ? Math.min(1, t.online / t.observed) : null)),
      0.5,
    );
    const pooled = (i: number, h: number, drop: DeviceDay | null) => {
      const k = ownOnline[i]![h]! - (drop && drop.online & (1 << h) ? 1 : 0);
      const o = observed[i]![h]! - (drop && drop.observed & (1 << h) ? weight(drop) : 0);
      return (k + OWN_HOURS_WEIGHT * hourly[h]!) / (o + OWN_HOURS_WEIGHT);
    };
    /** P(no sighting in the day's hours | around), by the device's other days. */
    const missOf = (d: DeviceDay) => {
      let miss = 1;
      bits(d.observed, (h) => {
        miss *= 1 - pooled(d.device, h, d);
      });
      return miss;
    };
    const device = ownOnline.map((_, i) => hourly.map((_, h) => pooled(i, h, null)));
    return { hourly, device, missOf, pooled };
  };

  // Are whole days missed, per weekday? Judged against hours taken as independent (marginal rates), and only
  // on days with two hours or more in which the device is usually seen: with one, a day away and a bad hour
  // cannot be told apart.
  const marginal = rates(() => 1);
  const telling = days.map((d) => {
    let count = 0;
    bits(d.observed, (h) => {
      if (marginal.pooled(d.device, h, d) >= TELLING_HOUR) count++;
    });
    return count >= 2;
  });
  const awayDays = daysMissedWhole(days, telling, marginal.missOf);

  // EM: E, how likely each unseen day was a day around (rather than away); M, the hours and a given that.
  let fit = marginal;
  let activity: number[] = awayDays.map((away) => (away ? 0.9 : 1));
  const unseen = days.filter((d) => d.online === 0);
  for (let round = 0; round < EM_ROUNDS && awayDays.some(Boolean); round++) {
    for (const d of unseen) {
      const a = activity[d.weekday]!;
      const miss = fit.missOf(d);
      d.around = a >= 1 ? 1 : (a * miss) / (1 - a + a * miss);
    }
    fit = rates((d) => d.around);
    const next = weekdayActivity(days, telling, awayDays);
    const moved = Math.max(...next.map((a, w) => Math.abs(a - activity[w]!)));
    activity = next;
    if (moved < 1e-4) break;
  }
  const { hourly, device: deviceHourly } = fit;

  // Against the fleet's hours: a dead device's own hours would explain its silence away.
  const own = deviceActivity(days, n, activity, hourly);
  const moves = hourMoves(
    cellsOf,
    cellsOf.map((c, i) => ({ table: tables.get(zones[i]!)!, at: c.first - base })),
    perDevice,
    hourly,
  );
  const devices = histories.map((h, i): DevicePresence => {
    const todays = perDevice[i]!.find((d) => d.day === clock.dayOf(zones[i]!, nowHour));
    const cells = cellsOf[i]!.online;
    const last = cells.lastIndexOf(1);
    const mine = activity.map((a) => Math.min(1, a * own[i]!));
    const seenToday = h.online || (todays?.online ?? 0) !== 0;
    const away = 1 - mine[weekdayOfDay(clock.dayOf(zones[i]!, nowHour))]!;
    const missed = todays ? missAll(todays.observed, deviceHourly[i]!) : 1;
    return {
      zone: zones[i]!,
      online: h.online,
      offlineFor: h.online ? 0 : last >= 0 ? Math.min(MAX_OFF, cells.length - 1 - last) : MAX_OFF,
      seenToday,
      hourly: deviceHourly[i]!,
      leaves: moves.leaves[i]!,
      lingers: moves.lingers[i]!,
      activity: mine,
      awayToday: seenToday ? 0 : away / Math.max(1e-12, away + (1 - away) * missed),
      duration: moves.duration,
    };
  });
  return { hourly, activity, duration: moves.duration, devices };
}

/**
 * Hour to hour, on the days a device was seen, per local hour (its own pooled with the fleet's): how often it
 * went offline after an online hour, and stayed away for the hour after being found offline as it began. And
 * for the fleet, how the hours already offline change the chance of coming back against the hour's usual
 * presence (an outage of a few hours is likelier to end the longer it has lasted).
 */
function hourMoves(
  cellsOf: readonly Cells[],
  local: ReadonlyArray<{ table: { hour: Uint8Array; day: Int32Array }; at: number }>,
  perDevice: ReadonlyArray<readonly DeviceDay[]>,
  hourly: readonly number[],
): { leaves: number[][]; lingers: number[][]; duration: number[] } {
  const count = () => Array.from({ length: HOURS }, () => ({ n: 0, k: 0 }));
  const tally = (own: Array<Array<{ n: number; k: number }>>, fleet: Array<{ n: number; k: number }>) => ({
    own,
    fleet,
    add(i: number, h: number, hit: boolean) {
      own[i]![h]!.n++;
      fleet[h]!.n++;
      if (hit) {
        own[i]![h]!.k++;
        fleet[h]!.k++;
      }
    },
  });
  const gone = tally(cellsOf.map(count), count());
  const stays = tally(cellsOf.map(count), count());
  const back = new Float64Array(MAX_OFF + 1);
  const expected = new Float64Array(MAX_OFF + 1);
  cellsOf.forEach((cells, i) => {
    const seen = new Set(perDevice[i]!.filter((d) => d.online !== 0).map((d) => d.day));
    const { table, at } = local[i]!;
    let off = 0;
    for (let c = 1; c < cells.online.length; c++) {
      const wasOn = cells.online[c - 1] === 1;
      const isOn = cells.online[c] === 1;
      off = wasOn ? 0 : off + 1;
      if (!seen.has(table.day[at + c]!)) continue;
      const h = table.hour[at + c]!;
      if (wasOn) {
        gone.add(i, h, !isOn);
        if (cells.atStart[c] === 0) stays.add(i, h, !isOn);
      } else {
        const d = Math.min(MAX_OFF, off);
        expected[d]! += hourly[h]!;
        if (isOn) back[d]!++;
      }
    }
  });
  // Leaving is taken as rare until seen: the fleet's rate at an hour weighs against none as FLEET_WEIGHT
  // observations (a device online stays so, one just gone is back soon: no history says otherwise).
  const pool = (t: ReturnType<typeof tally>) =>
    t.own.map((o) =>
      t.fleet.map((f, h) => {
        const rate = f.k / (f.n + FLEET_WEIGHT);
        return (o[h]!.k + OWN_HOURS_WEIGHT * rate) / (o[h]!.n + OWN_HOURS_WEIGHT);
      }),
    );
  // Returns after d offline hours against the hour's usual presence, pooled toward "no effect".
  const duration = Array.from({ length: MAX_OFF + 1 }, (_, d) =>
    d === 0 ? 1 : (back[d]! + DURATION_WEIGHT) / (expected[d]! + DURATION_WEIGHT),
  );
  return { leaves: pool(gone), lingers: pool(stays), duration };
}

function hourTotals(
  days: readonly DeviceDay[],
  weight: (i: number) => number,
): Array<{ observed: number; online: number }> {
  const t = Array.from({ length: HOURS }, () => ({ observed: 0, online: 0 }));
  days.forEach((d, i) => {
    const w = weight(i);
    bits(d.observed, (h) => {
      t[h]!.observed += w;
    });
    bits(d.online, (h) => {
      t[h]!.online += 1;
    });
  });
  return t;
}

/**
 * Per weekday: are whole days missed? Yes when its unseen days outnumber what bad luck in the observed hours
 * explains, hours taken as independent, by two standard deviations and a day. A weekday not observed takes the
 * observed ones of its kind (working day or weekend).
 */
function daysMissedWhole(
  days: readonly DeviceDay[],
  telling: readonly boolean[],
  missOf: (d: DeviceDay) => number,
): boolean[] {
  const w = Array.from({ length: 7 }, () => ({ informative: 0, unseen: 0, luck: 0, spread: 0 }));
  days.forEach((d, i) => {
    if (!telling[i]) return;
    const x = w[d.weekday]!;
    const miss = missOf(d);
    x.informative += 1 - miss;
    x.luck += miss;
    x.spread += miss * (1 - miss);
    if (d.online === 0) x.unseen++;
  });
  const verdict = (pick: (weekday: number) => boolean): boolean | null => {
    const t = { informative: 0, unseen: 0, luck: 0, spread: 0 };
    w.forEach((x, weekday) => {
      if (!pick(weekday)) return;
      for (const k of Object.keys(t) as Array<keyof typeof t>) t[k] += x[k];
    });
    if (t.informative < 1) return null;
    return t.unseen - t.luck > 2 * Math.sqrt(t.spread) + 1;
  };
  // A weekend says nothing of working days, nor the reverse: without either, days are not missed whole.
  const workday = verdict((d) => !isWeekend(d)) ?? false;
  const weekend = verdict(isWeekend) ?? false;
  return w.map((_, weekday) => verdict((d) => d === weekday) ?? (isWeekend(weekday) ? weekend : workday));
}

/**
 * Share of days around per weekday (1 for those whose days are not missed whole, or hardly); unobserved ones by
 * kind.
 */
function weekdayActivity(
  days: readonly DeviceDay[],
  telling: readonly boolean[],
  awayDays: readonly boolean[],
): number[] {
  const sum = Array<number>(7).fill(0);
  const count = Array<number>(7).fill(0);
  days.forEach((d, i) => {
    if (!telling[i]) return;
    sum[d.weekday]! += d.around;
    count[d.weekday]!++;
  });
  const share = (pick: (weekday: number) => boolean): number | null => {
    let s = 0;
    let n = 0;
    for (let w = 0; w < 7; w++) {
      if (!pick(w) || !awayDays[w]) continue;
      s += sum[w]!;
      n += count[w]!;
    }
    return n > 0 ? s / n : null;
  };
  const workday = share((d) => !isWeekend(d)) ?? 1;
  const weekend = share(isWeekend) ?? 1;
  const a = awayDays.map((away, w) =>
    !away ? 1 : (share((d) => d === w) ?? (isWeekend(w) ? weekend : workday)),
  );
  // A few days in a hundred: hours that go together (a late opening) look like that, days away do not.
  return a.map((x) => (x > 1 - MIN_AWAY ? 1 : x));
}

/**
 * Each device's activity relative to the fleet's (credibility-weighted): its days seen against those the
 * fleet's model expects, counted as far as devices in this fleet differ beyond chance. In a fleet of alike
 * devices a device's own unlucky days say nothing; where some devices are dead, theirs do.
 */
function deviceActivity(
  days: readonly DeviceDay[],
  count: number,
  activity: readonly number[],
  hourly: readonly number[],
): number[] {
  const seen = new Float64Array(count);
  const expected = new Float64Array(count);
  const variance = new Float64Array(count);
  for (const d of days) {
    const p = activity[d.weekday]! * (1 - missAll(d.observed, hourly));
    if (d.online !== 0) seen[d.device]!++;
    expected[d.device]! += p;
    variance[d.device]! += p * (1 - p);
  }
  // Between-device variance τ² of the activity factor, by moments: the spread beyond the binomial one, when it
  // is beyond chance (two standard errors).
  let excess = 0;
  let noise = 0;
  let scale = 0;
  for (let i = 0; i < count; i++) {
    excess += (seen[i]! - expected[i]!) ** 2 - variance[i]!;
    noise += 2 * variance[i]! ** 2;
    scale += expected[i]! ** 2;
  }
  const tau2 = scale > 0 && excess > 2 * Math.sqrt(noise) ? excess / scale : 0;
  return Array.from({ length: count }, (_, i) => {
    const e = expected[i]!;
    if (tau2 === 0 || e <= 0) return 1;
    const weight = (tau2 * e * e) / (tau2 * e * e + variance[i]!);
    return Math.max(0, 1 + weight * (seen[i]! / e - 1));
  });
}

/**
 * A device as the ETA follows it hour by hour, the part of it not yet updated: [0] online during the hour,
 * [1] away for the rest of its day, [1 + d] offline for d hours (d = 1…MAX_OFF, the last one "or more").
 */
export const STATE_SIZE = MAX_OFF + 2;

/** Where the device stands in the hour holding now, local hour `hour`. */
export function stateNow(d: DevicePresence, hour: number): Float64Array {
  const s = new Float64Array(STATE_SIZE);
  if (d.online) s[0] = 1;
  else if (d.offlineFor === 0) {
    // Online the hour before, offline now: gone for the hour as often as it was before in that case.
    s[0] = 1 - d.lingers[hour]!;
    s[2] = d.lingers[hour]!;
  } else {
    s[1] = d.awayToday;
    s[1 + d.offlineFor] = 1 - d.awayToday;
  }
  return s;
}

/**
 * Moves the state into the next hour, local hour `hour`; `newDay`: the weekday of the local day that begins
 * with it (then whoever is offline is away for the whole day with 1 − a), or −1. Returns the part that came
 * back online in it.
 */
export function nextHour(d: DevicePresence, s: Float64Array, hour: number, newDay: number): number {
  if (newDay >= 0) {
    // Yesterday's day away is over; who is offline at midnight may be away all of today.
    s[1 + MAX_OFF]! += s[1]!;
    s[1] = 0;
    const a = d.activity[newDay]!;
    if (a < 1) {
      for (let k = 2; k < STATE_SIZE; k++) {
        s[1]! += s[k]! * (1 - a);
        s[k]! *= a;
      }
    }
  }
  const on = s[0]!;
  const leave = d.leaves[hour]!;
  const back = d.hourly[hour]!;
  // Some of those offline come back; the others have been offline an hour longer (the last bucket keeps them).
  let returned = 0;
  let longest = 0;
  for (let off = MAX_OFF; off >= 1; off--) {
    const r = Math.min(1, back * d.duration[off]!);
    returned += s[1 + off]! * r;
    const stay = s[1 + off]! * (1 - r);
    s[1 + off] = 0;
    if (off >= MAX_OFF - 1) longest += stay;
    else s[2 + off] = stay;
  }
  s[1 + MAX_OFF] = longest;
  s[2] = on * leave;
  s[0] = on * (1 - leave) + returned;
  return returned;
}
