/**
 * A rehearsal: a rollout played out in virtual time, device by device, on what the status history taught of
 * each target (presence.ts) — the same model as the ETA's, but sampled (each seed a possible week: who is
 * online which hour, how long each install takes, which fail) instead of followed as probabilities. So it
 * also says what the ETA cannot: how gates fare under a failure rate, and the spread of the finish over seeds.
 * Pure: the learnt devices, the spec's limits and the time come in; nothing of the fleet is touched.
 *
 * Each hour a device is online (state 0 of presence.ts) it is there from the hour's start, or from a random
 * instant if it came back in it, until the hour's end or a random instant if it is gone the next hour. Every
 * 5-minute step, the free slots of the latest open phase's max_concurrent (and its rate) go to the waiting
 * devices here and inside their window, earlier phases first, in a random order per seed.
 */
import { mulberry32 } from '../random.js';
import { currentRate, type RatePolicy, type RetryPolicy, retryDelay } from './dispatch.js';
import { DEFAULT_QUORUM } from './phases.js';
import { type DevicePresence, HOUR_MS, LocalHours, nextHour, STATE_SIZE, stateNow } from './presence.js';
import { currentOrNextWindow, type MaintenanceWindow, nextWindow, windowAt, windowZone } from './window.js';
import { weekdayOfDay } from './zone.js';

const STEP_MS = 5 * 60_000;
/** Bounds of one rehearsal (CPU on the server): devices followed, seeds, virtual time. */
export const REHEARSAL_LIMITS = { devices: 2_000, seeds: 10, horizonMs: 28 * 24 * HOUR_MS } as const;

export interface RehearsalPhase {
  name: string;
  waitMs: number;
  /** Percent of the phase's devices finished before its gate judges (default 50). */
  quorum?: number;
  /** Percent of its finished devices that must have succeeded for the gate to pass (null: no gate). */
  successRate?: number | null;
  maxConcurrent?: number | null;
  rate?: RatePolicy | null;
}

export interface RehearsalDevice {
  phase: number;
  presence: DevicePresence;
}

export interface RehearsalInput {
  devices: readonly RehearsalDevice[];
  phases: readonly RehearsalPhase[];
  /** progressive: phases open at their gate; rolling: once the previous batch is through; others: one phase. */
  strategy: string;
  maxConcurrent: number;
  rate?: RatePolicy | null;
  retry?: RetryPolicy | null;
  window?: MaintenanceWindow | null;
  missedWindow?: 'next_window' | 'on_connect';
  notBefore?: number | null;
  endAt?: number | null;
  /** Install times (granted → finished) to draw from; none: 15 minutes ± 50 %. */
  updateTimes: readonly number[];
  /** Share of attempts that fail (0…1). */
  failureRate: number;
  now: number;
  horizonMs?: number;
  clock?: LocalHours;
}

export interface RehearsedPhase {
  name: string;
  devices: number;
  startAt: number | null;
  gateAt: number | null;
  finishAt: number | null;
  succeeded: number;
  failed: number;
  /** passed, halted (its success rate fell below the threshold), or not reached. */
  gate: 'passed' | 'halted' | 'not_reached' | 'none';
}

export interface RehearsalRun {
  seed: number;
  /** The last update's end, or null when some target never got its turn within the horizon. */
  finishAt: number | null;
  /** The instant the rollout halted at a gate, if it did. */
  haltedAt: number | null;
  /** Targets that never got their turn (offline in every window of the horizon, or after a halt). */
  unfinished: number;
  phases: RehearsedPhase[];
}

/** One possible run of the rollout (one seed). */
export function rehearseOnce(input: RehearsalInput, seed: number): RehearsalRun {
  const random = mulberry32(seed);
  const clock = input.clock ?? new LocalHours();
  const { now } = input;
  const horizon = now + Math.min(input.horizonMs ?? REHEARSAL_LIMITS.horizonMs, REHEARSAL_LIMITS.horizonMs);
  const phases = input.phases.length > 0 ? input.phases : [{ name: 'all', waitMs: 0 }];
  const last = phases.length - 1;
  const n = input.devices.length;
  const phaseOf = Int32Array.from(input.devices, (d) => Math.min(Math.max(0, d.phase), last));
  // Per device: 0 waiting, 1 updating, 2 succeeded, 3 failed; attempts spent; when it may try again.
  const status = new Uint8Array(n);
  const attempts = new Int32Array(n);
  const retryAt = new Float64Array(n);
  const endsAt = new Float64Array(n);
  const endsOk = new Uint8Array(n);
  // Where each device stands this hour (a presence.ts state index), and when it is here within the hour.
  const state = new Int32Array(n);
  const arrive = new Float64Array(n);
  const leave = new Float64Array(n);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  order.sort((a, b) => phaseOf[a]! - phaseOf[b]!);
  const draw = (p: Float64Array): number => {
    let u = random();
    for (let k = 0; k < STATE_SIZE; k++) {
      u -= p[k]!;
      if (u <= 0) return k;
    }
    return 0;
  };
  const firstHour = Math.floor(now / HOUR_MS);
  input.devices.forEach((d, i) => {
    state[i] = draw(stateNow(d.presence, clock.hourOf(d.presence.zone, firstHour)));
  });
  // Local hour, and the weekday of a local day beginning (else −1), of each UTC hour of the horizon, per zone.
  const hours = Math.ceil((horizon - firstHour * HOUR_MS) / HOUR_MS) + 2;
  const local = new Map<string, { hour: Uint8Array; newDay: Int8Array }>();
  for (const d of input.devices) {
    const zone = d.presence.zone;
    if (local.has(zone)) continue;
    const table = clock.table(zone, firstHour - 1, hours + 1);
    const newDay = new Int8Array(hours + 1);
    for (let k = 1; k <= hours; k++)
      newDay[k] = table.day[k] !== table.day[k - 1] ? weekdayOfDay(table.day[k]!) : -1;
    local.set(zone, { hour: table.hour, newDay });
  }
  const zoneTable = input.devices.map((d) => local.get(d.presence.zone)!);
  const vector = new Float64Array(STATE_SIZE);
  /** Samples where a device is in UTC hour `h` from where it was in h − 1. */
  const step = (i: number, h: number): number => {
    const p = input.devices[i]!.presence;
    const z = zoneTable[i]!;
    vector.fill(0);
    vector[state[i]!] = 1;
    nextHour(p, vector, z.hour[h - firstHour + 1]!, z.newDay[h - firstHour + 1]!);
    return draw(vector);
  };
  // The window per zone: may a device of this zone start at t? (on_connect: any time after its first window.)
  const anyTimeFrom = new Map<string, number>();
  // Per zone, the span around the last instant asked about that is all inside or all outside the window
  // (instants mostly come in order, so the zone arithmetic runs once per window, not once per device).
  const spans = new Map<string, { from: number; until: number; inside: boolean }>();
  const inWindow = (zone: string, t: number): boolean => {
    const w = input.window;
    if (!w) return true;
    const z = windowZone(w, zone);
    if (input.missedWindow === 'on_connect') {
      let from = anyTimeFrom.get(z);
      if (from === undefined) {
        from = currentOrNextWindow(w, z, Math.max(now, input.notBefore ?? now)).end;
        anyTimeFrom.set(z, from);
      }
      if (t >= from) return true;
    }
    let span = spans.get(z);
    if (!span || t < span.from || t >= span.until) {
      const open = windowAt(w, z, t);
      span = open
        ? { from: open.start, until: open.end, inside: true }
        : { from: t, until: nextWindow(w, z, t).start, inside: false };
      spans.set(z, span);
    }
    return span.inside;
  };
  /** Whether a device of this zone may start at some instant of [from, until): one look per zone and hour. */
  const touches = new Map<string, { from: number; yes: boolean }>();
  const windowTouches = (zone: string, from: number, until: number): boolean => {
    const w = input.window;
    if (!w) return true;
    const known = touches.get(zone);
    if (known?.from === from) return known.yes;
    const z = windowZone(w, zone);
    const anyTime =
      input.missedWindow === 'on_connect' && (anyTimeFrom.get(z) ?? Number.POSITIVE_INFINITY) < until;
    const yes = anyTime || inWindow(zone, from) || nextWindow(w, z, from).start < until;
    touches.set(zone, { from, yes });
    return yes;
  };
  const updateTime = (): number => {
    const times = input.updateTimes;
    if (times.length > 0) return times[Math.floor(random() * times.length)]!;
    return 15 * 60_000 * (0.5 + random());
  };

  const out: RehearsedPhase[] = phases.map((p, i) => ({
    name: p.name,
    devices: 0,
    startAt: i === 0 ? Math.max(now, input.notBefore ?? now) : null,
    gateAt: null,
    finishAt: null,
    succeeded: 0,
    failed: 0,
    gate: p.successRate == null ? 'none' : 'not_reached',
  }));
  for (let i = 0; i < n; i++) out[phaseOf[i]!]!.devices++;
  const settled = (k: number) => out[k]!.succeeded + out[k]!.failed;
  let active = 0;
  let running: number[] = [];
  let succeeded = 0;
  let haltedAt: number | null = null;
  let minuteStarts = 0;
  let minute = -1;

  const gateCheck = (t: number) => {
    for (let k = 0; k <= last; k++) {
      const ph = out[k]!;
      if (ph.startAt === null || ph.gateAt !== null || ph.startAt > t) continue;
      const spec = phases[k]!;
      const waiting = ph.devices - settled(k);
      if (input.strategy === 'rolling') {
        if (waiting > 0) continue;
      } else {
        if (k === last || t < ph.startAt + spec.waitMs) continue;
        const needed = Math.max(1, Math.ceil((ph.devices * (spec.quorum ?? DEFAULT_QUORUM)) / 100 - 1e-9));
        if (ph.devices > 0 && settled(k) < needed) continue;
      }
      ph.gateAt = t;
      if (spec.successRate != null && settled(k) > 0) {
        const rate = (100 * ph.succeeded) / settled(k);
        ph.gate = rate + 1e-9 >= spec.successRate ? 'passed' : 'halted';
        if (ph.gate === 'halted') {
          haltedAt = t;
          return;
        }
      } else if (spec.successRate != null) ph.gate = 'passed';
      if (k < last && out[k + 1]!.startAt === null) out[k + 1]!.startAt = t;
    }
  };

  let t = now;
  for (let h = firstHour; t < horizon && haltedAt === null; h++) {
    const hourStart = h * HOUR_MS;
    const hourEnd = hourStart + HOUR_MS;
    // Who is here this hour, and from when until when.
    const here: number[] = [];
    for (const i of order) {
      if (status[i]! >= 2) continue; // done: where it is no longer matters
      if (h > firstHour) {
        const before = state[i]!;
        state[i] = step(i, h);
        arrive[i] = state[i] === 0 && before !== 0 ? hourStart + random() * HOUR_MS : hourStart;
      } else arrive[i] = t;
      if (state[i] !== 0) continue;
      // Gone next hour (sampled now, kept for the next hour's step): leaves at a random instant of this one.
      const p = input.devices[i]!.presence;
      const goes = random() < p.leaves[zoneTable[i]!.hour[h - firstHour + 2]!]!;
      leave[i] = goes ? arrive[i]! + random() * (hourEnd - arrive[i]!) : hourEnd;
      if (status[i] === 0 && windowTouches(input.devices[i]!.presence.zone, hourStart, hourEnd)) here.push(i);
    }
    if (here.length === 0 && running.length === 0) {
      gateCheck(t);
      t = Math.max(t, hourEnd);
      continue;
    }
    for (; t < hourEnd && t < horizon; t += STEP_MS) {
      // Updates ending within this step: their slots are free from their end, not from the step's.
      const freedAt: number[] = [];
      const ending = running.filter((i) => endsAt[i]! < t + STEP_MS);
      if (ending.length > 0) running = running.filter((i) => endsAt[i]! >= t + STEP_MS);
      for (const i of ending) {
        active--;
        freedAt.push(Math.max(t, endsAt[i]!));
        const ph = out[phaseOf[i]!]!;
        if (endsOk[i]) {
          status[i] = 2;
          ph.succeeded++;
          succeeded++;
        } else if (input.retry && attempts[i]! < input.retry.attempts) {
          status[i] = 0;
          retryAt[i] = endsAt[i]! + retryDelay(attempts[i]!, input.retry);
          if (state[i] === 0) here.push(i);
        } else {
          status[i] = 3;
          ph.failed++;
        }
        if (status[i]! >= 2 && settled(phaseOf[i]!) === ph.devices) ph.finishAt = endsAt[i]!;
      }
      gateCheck(t);
      if (haltedAt !== null) break;
      if (out.every((p) => p.devices === settled(out.indexOf(p)))) break;
      if (input.endAt != null && t >= input.endAt) continue;
      if (input.notBefore != null && t < input.notBefore) continue;
      let current = 0;
      for (let k = 0; k <= last; k++) if (out[k]!.startAt !== null && out[k]!.startAt! <= t) current = k;
      const limit = phases[current]!.maxConcurrent ?? input.maxConcurrent;
      let free = limit - active;
      // The instant each free slot is free from: the earliest first.
      freedAt.sort((a, b) => a - b);
      const slotAt = (k: number, total: number) =>
        k < total - freedAt.length ? t : (freedAt[k - (total - freedAt.length)] ?? t);
      const rate = phases[current]!.rate ?? input.rate;
      if (rate) {
        const m = Math.floor(t / 60_000);
        if (m !== minute) {
          minute = m;
          minuteStarts = 0;
        }
        free = Math.min(free, Math.floor((currentRate(rate, succeeded) * STEP_MS) / 60_000) - minuteStarts);
      }
      // Free slots are handed out in order of the instant they free up; a device takes one from when it is here.
      let used = 0;
      const slots = free;
      for (let k = 0; k < here.length && free > 0; k++) {
        const i = here[k]!;
        const ph = out[phaseOf[i]!]!;
        if (status[i] !== 0 || ph.startAt === null || ph.startAt > t) continue;
        const start = Math.max(slotAt(used, slots), arrive[i]!, retryAt[i]!);
        if (start >= t + STEP_MS || leave[i]! <= start) continue;
        if (!inWindow(input.devices[i]!.presence.zone, start)) continue;
        used++;
        status[i] = 1;
        attempts[i]!++;
        endsAt[i] = start + updateTime();
        endsOk[i] = random() >= input.failureRate ? 1 : 0;
        running.push(i);
        active++;
        free--;
        minuteStarts++;
      }
    }
    if (out.every((p, k) => p.devices === settled(k))) break;
  }
  let unfinished = 0;
  for (let i = 0; i < n; i++) if (status[i]! < 2) unfinished++;
  const ends = out.map((p) => p.finishAt).filter((f): f is number => f !== null);
  return {
    seed,
    finishAt: unfinished === 0 && ends.length > 0 ? Math.max(...ends) : null,
    haltedAt,
    unfinished,
    phases: out,
  };
}

export interface RehearsalSummary {
  seeds: number;
  /** The finish over the seeds that finished: nearest-rank percentiles (null: fewer than half finished). */
  p50At: number | null;
  p90At: number | null;
  /** Seeds in which every target finished, and in which a gate halted the rollout. */
  finishedRuns: number;
  haltedRuns: number;
  runs: RehearsalRun[];
}

const percentile = (sorted: readonly number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;

/** The rollout over several seeds: its finish as P50 and P90. A seed that did not finish counts as late. */
export function rehearse(input: RehearsalInput, seeds: number, firstSeed = 1): RehearsalSummary {
  const count = Math.min(Math.max(1, Math.floor(seeds)), REHEARSAL_LIMITS.seeds);
  const runs = Array.from({ length: count }, (_, k) => rehearseOnce(input, firstSeed + k));
  const finishes = runs.map((r) => r.finishAt ?? Number.POSITIVE_INFINITY).sort((a, b) => a - b);
  const at = (p: number) => {
    const v = percentile(finishes, p);
    return Number.isFinite(v) ? v : null;
  };
  return {
    seeds: count,
    p50At: at(50),
    p90At: at(90),
    finishedRuns: runs.filter((r) => r.finishAt !== null).length,
    haltedRuns: runs.filter((r) => r.haltedAt !== null).length,
    runs,
  };
}

/**
 * The smallest max_concurrent, among a few multiples of the spec's, whose P90 finish meets the deadline
 * (every phase's limit scaled alike); null when none does. Fewer seeds per candidate, to bound the work.
 */
export function smallestMaxConcurrent(
  input: RehearsalInput,
  deadline: number,
  seeds: number,
): { maxConcurrent: number; p90At: number } | null {
  const factors = [0.25, 0.5, 1, 2, 4, 8];
  const seen = new Set<number>();
  for (const f of factors) {
    const mc = Math.max(1, Math.round(input.maxConcurrent * f));
    if (seen.has(mc)) continue;
    seen.add(mc);
    const scaled: RehearsalInput = {
      ...input,
      maxConcurrent: mc,
      phases: input.phases.map((p) =>
        p.maxConcurrent == null ? p : { ...p, maxConcurrent: Math.max(1, Math.round(p.maxConcurrent * f)) },
      ),
    };
    const s = rehearse(scaled, Math.min(seeds, 2));
    if (s.p90At !== null && s.p90At <= deadline) return { maxConcurrent: mc, p90At: s.p90At };
  }
  return null;
}
