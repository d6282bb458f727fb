/**
 * ETA of a rollout, per phase and overall.
 *
 * The model, kept simple on purpose:
 * 1. Each remaining device becomes *ready* at its expected next connection (`expectedConnection`):
 *    now if online; for a periodic device the next point of its cadence (lastSeen + k × mean gap, the
 *    first one not in the past); for an hour-of-week profile the first hour by which it has connected
 *    with probability ½ (the median). Devices with no known pattern are left out and counted.
 * 2. It cannot start before its phase starts, nor outside the maintenance window in its own zone.
 * 3. The fleet is a single queue served at a steady throughput r: the observed rate of finished
 *    updates, or before any finished, max_concurrent updates per typical update time, capped by `rate`.
 *    Devices finish one every 1/r, in the order they become ready: finish = max(previous, ready) + 1/r.
 *    So a fleet that is all online finishes in remaining / r, and a device that reconnects late pushes
 *    the ETA to its reconnection (plus 1/r).
 * 4. A phase's gate opens at the later of its soak end and the moment its quorum of devices has
 *    finished; the next phase starts then (approvals are assumed immediate). Devices still offline keep
 *    updating in the background and count for the phase's own finish.
 * Not modelled: the window closing mid-update, devices going offline again, retries, and phases that
 * overlap (a phase's late devices and the next phase's are each given the whole throughput).
 */
import { DEFAULT_QUORUM } from './phases.js';
import { type MaintenanceWindow, windowSchedule, windowZone } from './window.js';

export type ConnectionPattern =
  | { kind: 'online' }
  /** Learnt from the last_seen history: see `meanGapFromHistory`. */
  | { kind: 'periodic'; lastSeen: number; meanGapMs: number }
  /** Probability of being online in each hour of the week (168 values, UTC, 0 = Sunday 00:00–01:00). */
  | { kind: 'hourly'; probabilities: readonly number[] }
  | { kind: 'unknown' };

const HOUR_MS = 3_600_000;
const WEEK_HOURS = 168;
/** Beyond this an hourly profile is treated as "no idea when". */
const HOURLY_HORIZON_HOURS = 8 * WEEK_HOURS;

/** When the device is expected to connect next (≥ now), or null when there is no way to tell. */
export function expectedConnection(pattern: ConnectionPattern, now: number): number | null {
  switch (pattern.kind) {
    case 'online':
      return now;
    case 'periodic': {
      if (!(pattern.meanGapMs > 0)) return null;
      const k = Math.max(1, Math.ceil((now - pattern.lastSeen) / pattern.meanGapMs));
      return pattern.lastSeen + k * pattern.meanGapMs;
    }
    case 'hourly': {
      if (pattern.probabilities.length !== WEEK_HOURS) return null;
      const hourStart = Math.floor(now / HOUR_MS) * HOUR_MS;
      // Hour 0 of 1970 was Thursday 00:00 UTC, hour 96 of a week that starts on Sunday.
      const hourOfWeek = ((Math.floor(now / HOUR_MS) % WEEK_HOURS) + WEEK_HOURS + 96) % WEEK_HOURS;
      let stillAway = 1;
      for (let h = 0; h < HOURLY_HORIZON_HOURS; h++) {
        const p = pattern.probabilities[(hourOfWeek + h) % WEEK_HOURS]!;
        stillAway *= 1 - Math.min(1, Math.max(0, p));
        if (stillAway <= 0.5) return Math.max(now, hourStart + h * HOUR_MS);
      }
      return null;
    }
    case 'unknown':
      return null;
  }
}

/** Mean gap between successive connections; null with fewer than two. */
export function meanGapFromHistory(connections: readonly number[]): number | null {
  if (connections.length < 2) return null;
  const sorted = [...connections].sort((a, b) => a - b);
  return (sorted[sorted.length - 1]! - sorted[0]!) / (sorted.length - 1);
}

/** Updates finished per hour over the last `lookbackMs` (default one hour). */
export function observedThroughput(finishedAt: readonly number[], now: number, lookbackMs = HOUR_MS): number {
  const recent = finishedAt.filter((t) => t <= now && t > now - lookbackMs).length;
  return (recent * HOUR_MS) / lookbackMs;
}

export interface EtaDevice {
  /** Index into `phases` (default 0). */
  phase?: number;
  pattern: ConnectionPattern;
  timezone?: string | null;
}

export interface EtaPhase {
  name: string;
  waitMs: number;
  /** Percent of the phase's devices that must finish before its gate (default 50, as the spec). */
  quorum?: number;
  /** When the phase started, if it has. */
  startedAt?: number | null;
}

export interface EtaInput {
  /** Devices not finished yet. */
  devices: readonly EtaDevice[];
  /** Default: one phase without soak. */
  phases?: readonly EtaPhase[];
  /** Observed updates finished per hour; null or 0 before anything finished. */
  throughputPerHour?: number | null;
  maxConcurrent: number;
  /** How long one update takes on a device (default 15 minutes, seed 000's vehicles). */
  typicalUpdateMs?: number;
  ratePerMinute?: number | null;
  window?: MaintenanceWindow | null;
  /** scheduled_at: nothing starts before. */
  notBefore?: number | null;
  now: number;
}

export interface PhaseEta {
  name: string;
  devices: number;
  /** Devices without a known connection pattern: not in the estimate. */
  unknownDevices: number;
  startAt: number;
  /** When the next phase may start. */
  gateAt: number;
  /** When its last device (with a known pattern) has finished. */
  finishAt: number;
}

export interface Eta {
  finishAt: number;
  throughputPerHour: number;
  unknownDevices: number;
  phases: PhaseEta[];
}

export const DEFAULT_UPDATE_MS = 15 * 60_000;

function effectiveThroughput(input: EtaInput): number {
  if (input.throughputPerHour && input.throughputPerHour > 0) return input.throughputPerHour;
  const byConcurrency = (input.maxConcurrent * HOUR_MS) / (input.typicalUpdateMs ?? DEFAULT_UPDATE_MS);
  return input.ratePerMinute ? Math.min(byConcurrency, input.ratePerMinute * 60) : byConcurrency;
}

export function estimateEta(input: EtaInput): Eta {
  const { now } = input;
  const phases = input.phases?.length ? input.phases : [{ name: 'all', waitMs: 0 }];
  const r = effectiveThroughput(input);
  const interval = HOUR_MS / r;
  const schedules = new Map<string, (at: number) => number>();
  const earliest = Math.max(now, input.notBefore ?? now);
  const startInWindow = (at: number, zone: string | null | undefined) => {
    if (!input.window) return at;
    const z = windowZone(input.window, zone);
    let s = schedules.get(z);
    if (!s) {
      s = windowSchedule(input.window, z, earliest);
      schedules.set(z, s);
    }
    return s(at);
  };

  const expected = phases.map(() => [] as Array<{ connect: number; timezone?: string | null }>);
  const unknown = phases.map(() => 0);
  for (const d of input.devices) {
    const i = Math.min(Math.max(0, d.phase ?? 0), phases.length - 1);
    const connect = expectedConnection(d.pattern, now);
    if (connect === null) unknown[i]!++;
    else expected[i]!.push({ connect, timezone: d.timezone });
  }

  const out: PhaseEta[] = [];
  let previousGate = earliest;
  phases.forEach((phase, i) => {
    const startAt = phase.startedAt ?? Math.max(previousGate, earliest);
    const ready = expected[i]!.map((d) =>
      startInWindow(Math.max(d.connect, startAt, earliest), d.timezone),
    ).sort((a, b) => a - b);
    let finish = startAt;
    const finishes = ready.map((t) => (finish = Math.max(finish, t) + interval));
    const quorum = Math.max(1, Math.ceil((finishes.length * (phase.quorum ?? DEFAULT_QUORUM)) / 100 - 1e-9));
    const soakEnd = startAt + phase.waitMs;
    const gateAt =
      phases[i + 1]?.startedAt ??
      Math.max(soakEnd, finishes.length > 0 ? finishes[quorum - 1]! : soakEnd, now);
    previousGate = gateAt;
    out.push({
      name: phase.name,
      devices: ready.length + unknown[i]!,
      unknownDevices: unknown[i]!,
      startAt,
      gateAt,
      finishAt: finishes.at(-1) ?? startAt,
    });
  });
  return {
    finishAt: Math.max(...out.map((p) => p.finishAt)),
    throughputPerHour: r,
    unknownDevices: unknown.reduce((a, b) => a + b, 0),
    phases: out,
  };
}
