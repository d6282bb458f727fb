/**
 * ETA of a rollout, per phase and overall. Pure: what the store knows comes in (engine/progress.ts reads it).
 *
 * Each waiting device is followed hour by hour with what `presence.ts` learnt of it: online during the hour,
 * offline for so many hours (an outage ends, a van parked for the night comes back in the morning), away for
 * the whole day. Within each hour the slots are shared among the devices online, waiting and allowed to
 * start — their phase open, not before scheduled_at nor after end_at, inside their window in their own zone
 * (any time once their first window has gone by, with missed_window: on_connect) — at most max_concurrent
 * at once, each held for the update time observed (granted → finished; 15 minutes before any has finished),
 * no more per minute than `rate` allows (with its growth), earlier phases first. Devices coming back during
 * an hour arrive evenly over it and those leaving go evenly: when slots are short, some are gone before their
 * turn (the queue's tail is the devices in an outage when their turn came). A fluid simulation: devices are
 * probabilities, hours are steps, slots are counted in 5-minute steps.
 * - A phase is done when the expected number of its devices not updated falls below one half: the tail of a
 *   large fleet, not its typical device. Devices not expected within four weeks are left out of that and
 *   counted (`unknownDevices`).
 * - Progressive phases open at their gate (soak over and quorum finished; approvals taken as immediate),
 *   rolling batches once the previous batch has nobody updating or waiting online.
 * - Retries: with failures seen so far, a phase expected to have a failing device ends when the last one has
 *   used its attempts (its backoffs and as many more update times).
 * Not modelled: max_concurrent_per, halts, an operator's approval time.
 */
import { currentRate, type RatePolicy, type RetryPolicy, retryDelay } from './dispatch.js';
import { DEFAULT_QUORUM } from './phases.js';
import { type DevicePresence, HOUR_MS, LocalHours, nextHour, stateNow } from './presence.js';
import { currentOrNextWindow, type MaintenanceWindow, nextWindow, windowAt, windowZone } from './window.js';
import { weekdayOfDay } from './zone.js';

export const DEFAULT_UPDATE_MS = 15 * 60_000;
const STEP_MS = 5 * 60_000;
const HORIZON_HOURS = 28 * 24;

export interface EtaDevice {
  /** Index into `phases` (default 0). */
  phase?: number;
  presence: DevicePresence;
  /** Waiting devices it stands for (a sample of a large fleet); default 1. */
  weight?: number;
  /** With `window: device_defined`, the windows it takes (its own, its groups', its tags'); none: `window`. */
  windows?: readonly MaintenanceWindow[] | null;
}

export interface EtaPhase {
  name: string;
  waitMs: number;
  /** Percent of the phase's devices that must finish before its gate (default 50, as the spec). */
  quorum?: number;
  /** When the phase started, if it has. */
  startedAt?: number | null;
  /** Its devices already finished (succeeded or failed) and updating now. */
  finished?: number;
  active?: number;
  /** Limits while this phase is the latest open one (the spec's per-phase ones); default the rollout's. */
  maxConcurrent?: number | null;
  rate?: RatePolicy | null;
}

export interface EtaInput {
  /** Devices waiting to start. */
  devices: readonly EtaDevice[];
  /** Default: one phase without soak. */
  phases?: readonly EtaPhase[];
  /** progressive: phases open at their gate; rolling: once the previous batch is through. */
  strategy?: string;
  maxConcurrent: number;
  /** Mean time an update holds its slot (granted → finished), as observed; default 15 minutes. */
  updateMs?: number | null;
  /** The rollout's retries, and the share of its finished updates that failed so far (null: none finished). */
  retry?: RetryPolicy | null;
  failureRate?: number | null;
  rate?: RatePolicy | null;
  /** Updates succeeded so far (the rate grows with them). */
  succeeded?: number;
  window?: MaintenanceWindow | null;
  missedWindow?: 'next_window' | 'on_connect';
  /** When the rollout started running (its first window counts from here). */
  startedAt?: number | null;
  /** scheduled_at: nothing starts before. */
  notBefore?: number | null;
  /** end_at: nothing starts after; waiting devices are left out then. */
  endAt?: number | null;
  /** on_connect: the rollout takes devices in until end_at and ends then, not before. */
  continuous?: boolean;
  now: number;
  clock?: LocalHours;
}

export interface PhaseEta {
  name: string;
  devices: number;
  /** Devices not likely to connect (in their window) within four weeks: not in the estimate. */
  unknownDevices: number;
  startAt: number;
  /** When the next phase may start. */
  gateAt: number;
  /** When its last device (of those expected) has finished. */
  finishAt: number;
}

export interface Eta {
  finishAt: number;
  throughputPerHour: number;
  unknownDevices: number;
  phases: PhaseEta[];
}

/** Updates finished per hour over the last `lookbackMs` (default one hour). */
export function observedThroughput(finishedAt: readonly number[], now: number, lookbackMs = HOUR_MS): number {
  const recent = finishedAt.filter((t) => t <= now && t > now - lookbackMs).length;
  return (recent * HOUR_MS) / lookbackMs;
}

/** Mean of the observed update times (granted → finished); null without any. */
export function meanUpdateMs(durations: readonly number[]): number | null {
  const valid = durations.filter((d) => d >= 0);
  return valid.length > 0 ? valid.reduce((a, b) => a + b, 0) / valid.length : null;
}

/** The hours the simulation steps through: the one holding `now` (from now), then whole hours. */
const cellStart = (now: number, j: number) => (j === 0 ? now : (Math.floor(now / HOUR_MS) + j) * HOUR_MS);

/**
 * The share of each hour cell in which a device of this zone may start, for a phase open from `opensAt`:
 * spans of time cut into the cells.
 */
function startShares(
  input: EtaInput,
  zone: string | null,
  opensAt: number,
  own?: readonly MaintenanceWindow[] | null,
): Float64Array {
  const { now } = input;
  const windows = own && own.length > 0 ? own : input.window ? [input.window] : [];
  const shares = new Float64Array(HORIZON_HOURS);
  const horizon = cellStart(now, HORIZON_HOURS);
  const from = Math.max(now, opensAt, input.notBefore ?? now);
  const until = Math.min(horizon, input.endAt ?? horizon);
  const spans: Array<[number, number]> = [];
  if (windows.length === 0) spans.push([from, until]);
  else {
    const zones = windows.map((window) => windowZone(window, zone));
    // missed_window: on_connect: once the device's first window since the start has gone by, any time will do.
    const startedAt = input.startedAt ?? Math.max(now, input.notBefore ?? now);
    const anyTimeFrom =
      input.missedWindow === 'on_connect'
        ? Math.min(...windows.map((window, i) => currentOrNextWindow(window, zones[i]!, startedAt).end))
        : Number.POSITIVE_INFINITY;
    windows.forEach((window, i) => {
      const z = zones[i]!;
      let w = windowAt(window, z, from) ?? nextWindow(window, z, from);
      while (w.start < Math.min(until, anyTimeFrom)) {
        spans.push([Math.max(from, w.start), Math.min(until, w.end, anyTimeFrom)]);
        w = nextWindow(window, z, w.end);
      }
    });
    if (anyTimeFrom < until) spans.push([Math.max(from, anyTimeFrom), until]);
  }
  for (const [a, b] of mergedSpans(spans)) {
    if (b <= a) continue;
    const first = a < cellStart(now, 1) ? 0 : Math.floor((a - cellStart(now, 1)) / HOUR_MS) + 1;
    for (let j = first; j < HORIZON_HOURS && cellStart(now, j) < b; j++) {
      const s = cellStart(now, j);
      const e = cellStart(now, j + 1);
      shares[j]! += (Math.min(b, e) - Math.max(a, s)) / (e - s);
    }
  }
  return shares;
}

/** Overlapping spans made one (a device open in two windows at once starts no faster). */
function mergedSpans(spans: Array<[number, number]>): Array<[number, number]> {
  const sorted = spans.filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  const merged: Array<[number, number]> = [];
  for (const [a, b] of sorted) {
    const last = merged[merged.length - 1];
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else merged.push([a, b]);
  }
  return merged;
}

interface Tracked {
  presence: DevicePresence;
  weight: number;
  phase: number;
  /** Its part not yet updated, where it stands (see presence.ts). */
  state: Float64Array;
  /** Share of each hour cell it may start in, once its phase is open. */
  shares: Float64Array | null;
  /** Its own windows (device_defined), if any. */
  windows: readonly MaintenanceWindow[] | null;
  /** The part of it that came back online in this hour. */
  back: number;
}

export function estimateEta(input: EtaInput): Eta {
  const { now } = input;
  const clock = input.clock ?? new LocalHours();
  const phases: EtaPhase[] = input.phases?.length ? [...input.phases] : [{ name: 'all', waitMs: 0 }];
  const last = phases.length - 1;
  const updateMs = Math.max(STEP_MS, input.updateMs ?? DEFAULT_UPDATE_MS);
  const lag = Math.round(updateMs / STEP_MS);
  const slotsPerHour = (input.maxConcurrent * HOUR_MS) / updateMs;
  const throughputPerHour = input.rate ? Math.min(slotsPerHour, input.rate.perMinute * 60) : slotsPerHour;
  const steps = Math.floor((cellStart(now, HORIZON_HOURS) - now) / STEP_MS);
  const start = Math.max(now, input.notBefore ?? now);
  const cellOf = (t: number) =>
    t < cellStart(now, 1) ? 0 : 1 + Math.floor((t - cellStart(now, 1)) / HOUR_MS);

  const devices: Tracked[] = input.devices.map((d) => ({
    presence: d.presence,
    weight: d.weight ?? 1,
    phase: Math.min(Math.max(0, d.phase ?? 0), last),
    state: stateNow(d.presence, clock.hourOf(d.presence.zone, Math.floor(now / HOUR_MS))),
    shares: null,
    windows: d.windows ?? null,
    back: 0,
  }));
  const waiting = phases.map((_, i) =>
    devices.filter((d) => d.phase === i).reduce((a, d) => a + d.weight, 0),
  );
  const active = phases.map((p) => p.active ?? 0);
  const finished0 = phases.map((p) => p.finished ?? 0);

  // Local hour and new local days of each cell, per zone.
  const local = new Map<string, { hour: Int8Array; newDay: Int8Array }>();
  for (const d of devices) {
    const zone = d.presence.zone;
    if (local.has(zone)) continue;
    const first = Math.floor(now / HOUR_MS);
    const hour = new Int8Array(HORIZON_HOURS + 1);
    const newDay = new Int8Array(HORIZON_HOURS + 1);
    for (let j = 0; j <= HORIZON_HOURS; j++) {
      hour[j] = clock.hourOf(zone, first + j);
      const day = clock.dayOf(zone, first + j);
      newDay[j] = j > 0 && day !== clock.dayOf(zone, first + j - 1) ? weekdayOfDay(day) : -1;
    }
    local.set(zone, { hour, newDay });
  }

  const opens: Array<number | null> = phases.map((p, i) =>
    i === 0 ? (p.startedAt ?? start) : (p.startedAt ?? null),
  );
  const gates: Array<number | null> = phases.map((_, i) => phases[i + 1]?.startedAt ?? null);
  // Per phase: updates started (cumulative, from now) at each step, and how many it may start in this hour.
  const started = phases.map(() => new Float64Array(steps + 1));
  const startedBy = (i: number, s: number) => (s < 0 ? 0 : started[i]![s]!);
  // This hour, per phase (expected numbers): devices online all of it, coming back in it (evenly over the
  // hour), leaving in it (evenly); of those, the ones here now and not started; and those started.
  const hour = () => phases.map(() => 0);
  const tiers = { all: hour(), back: hour(), leaving: hour() };
  const here = { all: hour(), back: hour(), leaving: hour() };
  const taken = { all: hour(), back: hour(), leaving: hour() };
  const takenThisHour = hour();
  // Updates in progress now end evenly over the next update time; one started at step x ends at x + lag.
  const activeLeft = (i: number, s: number) => (active[i]! * Math.max(0, lag - s)) / lag;
  const done = (i: number, s: number) =>
    finished0[i]! + active[i]! - activeLeft(i, s) + startedBy(i, s - lag);
  const busyOf = (i: number, s: number) => activeLeft(i, s) + startedBy(i, s - 1) - startedBy(i, s - lag);

  let cell = 0;
  /**
   * A device online this hour is there all of it, or only from when it comes back, or until it leaves: when
   * slots are short some of those are gone before their turn (the queue's tail is the devices in an outage
   * when their turn came).
   */
  const split = (d: Tracked) => {
    const on = d.state[0]!;
    const back = Math.min(on, d.back);
    const leaving = Math.min(on - back, on * d.presence.leaves[local.get(d.presence.zone)!.hour[cell + 1]!]!);
    return { all: on - back - leaving, back, leaving };
  };
  /** The devices of each open phase online and allowed to start in the current hour. */
  const measure = (only?: number) => {
    for (let i = 0; i <= last; i++) {
      if (only !== undefined && only !== i) continue;
      for (const k of ['all', 'back', 'leaving'] as const) {
        tiers[k][i] = 0;
        taken[k][i] = 0;
      }
      takenThisHour[i] = 0;
    }
    for (const d of devices) {
      if (!d.shares || (only !== undefined && d.phase !== only)) continue;
      const p = split(d);
      for (const k of ['all', 'back', 'leaving'] as const)
        tiers[k][d.phase]! += d.weight * p[k] * d.shares[cell]!;
    }
    for (let i = 0; i <= last; i++) {
      if (only !== undefined && only !== i) continue;
      here.all[i] = tiers.all[i]!;
      here.back[i] = 0;
      here.leaving[i] = tiers.leaving[i]!;
    }
  };
  const open = (i: number, at: number) => {
    opens[i] = at;
    // Per zone, and per windows list for devices with windows of their own (a group's list is shared).
    const shares = new Map<readonly MaintenanceWindow[] | null, Map<string, Float64Array>>();
    for (const d of devices) {
      if (d.phase !== i) continue;
      const zone = d.presence.zone;
      const byZone = shares.get(d.windows) ?? new Map<string, Float64Array>();
      shares.set(d.windows, byZone);
      if (!byZone.has(zone)) byZone.set(zone, startShares(input, zone, at, d.windows));
      d.shares = byZone.get(zone)!;
    }
    measure(i);
  };
  phases.forEach((_, i) => {
    if (opens[i] !== null) open(i, opens[i]!);
  });
  /** Hands the hour's starts to the devices that were online, then moves everyone into the next hour. */
  const settle = () => {
    const share = (k: 'all' | 'back' | 'leaving', i: number) =>
      tiers[k][i]! > 0 ? Math.min(1, taken[k][i]! / tiers[k][i]!) : 0;
    for (const d of devices) {
      if (d.shares) {
        const p = split(d);
        const i = d.phase;
        const started = p.all * share('all', i) + p.back * share('back', i) + p.leaving * share('leaving', i);
        d.state[0]! -= started * d.shares[cell]!;
      }
      const l = local.get(d.presence.zone)!;
      d.back = nextHour(d.presence, d.state, l.hour[cell + 1]!, l.newDay[cell + 1]!);
    }
    cell++;
    measure();
  };
  const gateOpen = (i: number, s: number, t: number): boolean => {
    const p = phases[i]!;
    if (input.strategy === 'rolling') {
      // The batch has nobody updating nor waiting while connected.
      return here.all[i]! + here.back[i]! + here.leaving[i]! < 0.5 && busyOf(i, s) < 0.5;
    }
    if (t < opens[i]! + p.waitMs) return false;
    const judged = finished0[i]! + active[i]! + waiting[i]!;
    const needed = Math.max(1, Math.ceil((judged * (p.quorum ?? DEFAULT_QUORUM)) / 100 - 1e-9));
    return judged < 0.5 || done(i, s) >= needed - 0.5;
  };

  let stop = steps;
  for (let s = 0; s <= steps; s++) {
    const t = now + s * STEP_MS;
    while (cellOf(t) > cell && cell < HORIZON_HOURS - 1) settle();
    for (let i = 0; i <= last; i++) {
      if (opens[i] === null || t < opens[i]! || gates[i] !== null || !gateOpen(i, s, t)) continue;
      gates[i] = t;
      if (i < last && opens[i + 1] === null) open(i + 1, t);
    }
    // Starts: earlier phases first, within the free slots and the minute's rate; none after end_at.
    let busy = 0;
    for (let i = 0; i <= last; i++) busy += busyOf(i, s);
    const ended = input.endAt != null && t >= input.endAt;
    const left = phases.reduce((a, _, i) => a + waiting[i]! - startedBy(i, s - 1), 0);
    if (phases.every((_, i) => opens[i] !== null) && (left < 1e-3 || ended) && busy < 1e-3) {
      for (let i = 0; i <= last; i++) started[i]![s] = startedBy(i, s - 1);
      stop = s;
      break;
    }
    // The latest open phase's limits hold for the whole rollout, as the server's dispatch does.
    let current = 0;
    for (let i = 0; i <= last; i++) if (opens[i] !== null && opens[i]! <= t) current = i;
    const maxConcurrent = phases[current]!.maxConcurrent ?? input.maxConcurrent;
    const rate = phases[current]!.rate ?? input.rate;
    let free = Math.max(0, maxConcurrent - busy);
    if (rate) {
      let succeeded = input.succeeded ?? 0;
      for (let i = 0; i <= last; i++) succeeded += done(i, s) - finished0[i]! - active[i]!;
      free = Math.min(free, (currentRate(rate, Math.max(0, succeeded)) * STEP_MS) / 60_000);
    }
    // Within the hour, those coming back arrive and those leaving go evenly; slots go to whoever is here.
    const stepsLeft = Math.max(1, Math.round((cellStart(now, cell + 1) - t) / STEP_MS));
    const take = phases.map(() => 0);
    for (let i = 0; i <= last; i++) {
      if (opens[i] === null || opens[i]! > t) continue;
      here.back[i]! += (tiers.back[i]! - taken.back[i]! - here.back[i]!) / stepsLeft;
      here.leaving[i]! -= here.leaving[i]! / (stepsLeft + 1);
      if (ended) continue;
      const present = here.all[i]! + here.back[i]! + here.leaving[i]!;
      const n = Math.min(free, present);
      if (n <= 0) continue;
      for (const k of ['all', 'back', 'leaving'] as const) {
        const part = (n * here[k][i]!) / present;
        here[k][i]! -= part;
        taken[k][i]! += part;
      }
      free -= n;
      takenThisHour[i]! += n;
      take[i] = n;
    }
    for (let i = 0; i <= last; i++) started[i]![s] = startedBy(i, s - 1) + take[i]!;
  }

  // A phase is done once what is left of it is less than half a device, not counting those the horizon never
  // reached; after end_at, once its updates in progress are through.
  const finishes = phases.map((_, i) => {
    if (opens[i] === null) return null;
    const never = waiting[i]! - startedBy(i, stop);
    const expected = finished0[i]! + active[i]! + waiting[i]! - never;
    for (let s = 0; s <= stop; s++) {
      const t = now + s * STEP_MS;
      if (done(i, s) >= expected - 0.5) return t;
      if (input.endAt != null && t >= input.endAt && busyOf(i, s) < 0.5) return t;
    }
    return now + stop * STEP_MS;
  });
  // Retries: a phase expected to have a failing device ends when the last one has used its attempts, each after
  // its backoff and another update's time.
  const failureRate = input.failureRate ?? 0;
  const retryTail = input.retry ? retryTailMs(input.retry, updateMs) : 0;
  phases.forEach((_, i) => {
    if (finishes[i] != null && failureRate * (active[i]! + waiting[i]!) >= 0.5)
      finishes[i] = finishes[i]! + retryTail;
  });
  const horizon = cellStart(now, HORIZON_HOURS);
  let finishAt = finishes.some((f) => f === null) ? horizon : Math.max(now, ...(finishes as number[]));
  // on_connect takes devices in until end_at and ends then, not before.
  if (input.continuous && input.endAt != null) finishAt = Math.max(finishAt, input.endAt);

  const out: PhaseEta[] = phases.map((p, i) => {
    const startAt = opens[i] ?? horizon;
    const finish = finishes[i] ?? horizon;
    return {
      name: p.name,
      devices: Math.round(finished0[i]! + active[i]! + waiting[i]!),
      unknownDevices: Math.round(opens[i] === null ? waiting[i]! : waiting[i]! - startedBy(i, stop)),
      startAt,
      gateAt: gates[i] ?? Math.max(startAt + p.waitMs, finish),
      finishAt: finish,
    };
  });
  return {
    finishAt,
    throughputPerHour,
    unknownDevices: out.reduce((a, p) => a + p.unknownDevices, 0),
    phases: out,
  };
}

/** From a last failure to the end of the last attempt: each retry waits its backoff, then takes an update's time. */
function retryTailMs(policy: RetryPolicy, updateMs: number): number {
  let tail = 0;
  for (let attempt = 1; attempt < policy.attempts; attempt++) tail += retryDelay(attempt, policy) + updateMs;
  return tail;
}
