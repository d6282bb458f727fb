/**
 * The simulation's result: per rollout the timeline, gates, final states and the device-side measures,
 * and the invariants checked against them. `checks` are pure functions of the result's figures, so a
 * test can feed them a violation and see them fail.
 */
import { type StateCounts, tally } from '../core/rollout/counts.js';
import type { PlanJson } from '../protocol/rollouts.js';
import type { GateRecord, Rollout } from '../store/store.js';
import type { RolloutObservation } from './observer.js';
import type { SimOutcome } from './simulator.js';

const iso = (ms: number | null | undefined) =>
  ms === null || ms === undefined ? null : new Date(ms).toISOString();

export interface GateResult {
  phase: number;
  name: string;
  decision: GateRecord['decision'];
  reason: string | null;
  success_rate: number | null;
  threshold: number | null;
  finished: number;
  at: string;
  /**
   * Measured on the devices just before the decision: success rate of the phase's settled devices (succeeded,
   * or failed with no attempt left), and what the injected failure rates predict for them.
   */
  device_success_rate: number | null;
  device_finished: number;
  /** Failed with attempts left, or timed out by the server: the engine counts them failed or waiting. */
  device_unsettled: number;
  /** The phase's devices, finished or not. */
  phase_devices: number;
  expected_success_rate: number | null;
}

export interface RolloutResult {
  name: string;
  id: string;
  release: string;
  strategy: string;
  targets: number;
  state: string;
  reason: string | null;
  started_at: string | null;
  finished_at: string | null;
  timeline: Array<{ at: string; counts: StateCounts }>;
  gates: GateResult[];
  final: StateCounts;
  outside_window: number;
  outside_window_examples: string[];
  peak_concurrent: number;
  max_concurrent: number;
  /** With max_concurrent_per: the most devices of one tag value updating at once, and the limit. */
  peak_concurrent_per: { tag: string; limit: number; peak: number; value: string | null } | null;
  double_offers: number;
  /** Downloads devices started (a retry again) and the bytes they fetch, full artifacts and deltas apart. */
  downloads: { full: number; delta: number; bytes_full: number; bytes_delta: number };
  double_offer_examples: string[];
  /** The dry run just before creation: its ETA band and the targets its window has not reached lately. */
  plan?: {
    p50_at: string;
    p90_at: string;
    source: string;
    unknown_devices: number;
    reachability: PlanJson['reachability'];
  } | null;
  eta: Array<{
    phase: number;
    at: string;
    /** Recorded at a phase start (or creation), or on the hourly round. */
    when: 'phase_start' | 'hourly';
    /** The P50. */
    predicted_finish: string | null;
    predicted_p90: string | null;
    /** Where the update time behind it came from: observed, history, default. */
    source: string | null;
    actual_finish: string | null;
    /** The P50's error as a share of the time that was left. */
    error_pct: number | null;
    p90_error_pct: number | null;
    /** Share of the targets finished (succeeded or failed) at the time, percent. */
    done_pct: number | null;
    unknown_devices: number;
    unreachable: number;
  }>;
}

export interface Check {
  name: string;
  rollout: string;
  pass: boolean;
  detail: string;
}

export interface SimResult {
  scenario: string;
  seed: number;
  start: string;
  end: string;
  devices: number;
  layer: string;
  run: {
    wall_seconds: number;
    setup_seconds: number;
    peak_rss_mb: number;
    rss_per_device_bytes: number;
    heartbeats: number;
    reports: number;
    events: number;
    engine_passes: number;
    syncs: number;
    /** Seconds between syncs (the scenario's or the automatic choice); null: only when the server reads. */
    sync_every_seconds: number | null;
    /** Device events within a step reach the server together. */
    step_seconds: number;
    /** Where the server's database was: memory, or a temporary file for runs too large for memory. */
    database: 'memory' | 'file';
    device_days_per_second: number;
  };
  rollouts: RolloutResult[];
  checks: Check[];
  pass: boolean;
}

function gateResults(r: Rollout, o: RolloutObservation): GateResult[] {
  return o.gates.map((g) => {
    const measured = o.phaseRate(g.phase, g.moment, g.at, r.spec.retry.attempts);
    return {
      phase: g.phase,
      name: r.spec.phases[g.phase]?.name ?? `phase ${g.phase + 1}`,
      decision: g.decision,
      reason: g.reason,
      success_rate: g.successRate,
      threshold: g.threshold,
      finished: g.finished,
      at: iso(g.at)!,
      device_success_rate: measured.rate,
      device_finished: measured.succeeded + measured.failed,
      device_unsettled: measured.unsettled,
      phase_devices: measured.devices,
      expected_success_rate: measured.expected,
    };
  });
}

function lastFinish(o: RolloutObservation): number | null {
  let last = 0;
  for (let i = 0; i < o.finishedAt.length; i++)
    if (o.outcome[i] !== 0 && o.finishedAt[i]! > last) last = o.finishedAt[i]!;
  return last === 0 ? null : last;
}

/** A predicted finish's error as a share of the time that was left, percent (one decimal). */
function errorPct(predicted: number | null, actual: number | null, at: number): number | null {
  if (predicted === null || actual === null || actual <= at) return null;
  return Math.round((1000 * (predicted - actual)) / (actual - at)) / 10;
}

/** Share of the targets finished at `at`, from the hourly timeline (the last sample not after it). */
function donePct(o: RolloutObservation, targets: number, at: number): number | null {
  let counts: StateCounts | null = null;
  for (const t of o.timeline) if (t.at <= at) counts = t.counts;
  if (!counts || targets <= 0) return null;
  return Math.round((1000 * tally(counts).finished) / targets) / 10;
}

export function buildResult(outcome: SimOutcome): SimResult {
  const s = outcome.scenario;
  const rollouts = outcome.observations.map((o, k): RolloutResult => {
    const r = outcome.rollouts[k]!;
    const actual = r.finishedAt ?? (r.state === 'completed' ? lastFinish(o) : null);
    return {
      name: o.name,
      id: o.id,
      release: r.release,
      strategy: r.spec.strategy,
      targets: r.targets,
      state: r.state,
      reason: r.reason,
      started_at: iso(r.startedAt),
      finished_at: iso(r.finishedAt),
      timeline: o.timeline.map((t) => ({ at: iso(t.at)!, counts: t.counts })),
      gates: gateResults(r, o),
      final: o.timeline.at(-1)?.counts ?? {},
      outside_window: o.outsideWindow,
      outside_window_examples: o.outsideWindowExamples,
      peak_concurrent: o.peakActive,
      max_concurrent: r.spec.maxConcurrent,
      peak_concurrent_per: r.spec.maxConcurrentPer
        ? { ...r.spec.maxConcurrentPer, peak: o.peakPer, value: o.peakPerValue }
        : null,
      double_offers: o.doubleOffers,
      downloads: {
        full: o.downloads.full,
        delta: o.downloads.delta,
        bytes_full: o.downloads.bytesFull,
        bytes_delta: o.downloads.bytesDelta,
      },
      double_offer_examples: o.doubleOfferExamples,
      plan: o.plan && {
        p50_at: o.plan.eta.p50_at,
        p90_at: o.plan.eta.p90_at,
        source: o.plan.eta.source,
        unknown_devices: o.plan.eta.unknown_devices,
        reachability: o.plan.reachability,
      },
      eta: o.eta.map((e) => ({
        phase: e.phase,
        at: iso(e.at)!,
        when: e.when,
        predicted_finish: iso(e.predictedFinish),
        predicted_p90: iso(e.p90),
        source: e.source,
        actual_finish: iso(actual),
        error_pct: errorPct(e.predictedFinish, actual, e.at),
        p90_error_pct: errorPct(e.p90, actual, e.at),
        done_pct: donePct(o, r.targets, e.at),
        unknown_devices: e.unknownDevices,
        unreachable: e.unreachable,
      })),
    };
  });
  const checks = rollouts.flatMap(checkRollout);
  const st = outcome.stats;
  return {
    scenario: s.name,
    seed: s.seed,
    start: iso(s.start)!,
    end: iso(outcome.end)!,
    devices: outcome.devices,
    layer: s.simulation.layer,
    run: {
      wall_seconds: round(st.wallMs / 1000, 2),
      setup_seconds: round(st.setupMs / 1000, 2),
      peak_rss_mb: round(st.peakRssBytes / 2 ** 20, 1),
      rss_per_device_bytes: Math.round(st.peakRssBytes / Math.max(1, outcome.devices)),
      heartbeats: st.heartbeats,
      reports: st.reports,
      events: st.events,
      engine_passes: st.engineTicks,
      syncs: st.syncs,
      sync_every_seconds: st.syncEveryMs === null ? null : st.syncEveryMs / 1000,
      step_seconds: s.simulation.stepMs / 1000,
      database: st.database,
      device_days_per_second: Math.round(st.deviceDaysPerSecond),
    },
    rollouts,
    checks,
    pass: checks.every((c) => c.pass),
  };
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

/** The invariants of one rollout, from its figures alone. */
export function checkRollout(r: RolloutResult): Check[] {
  const checks: Check[] = [];
  const add = (name: string, pass: boolean, detail: string) =>
    checks.push({ name, rollout: r.name, pass, detail });
  add(
    'window respected',
    r.outside_window === 0,
    r.outside_window === 0
      ? 'no device started outside its maintenance window'
      : `${r.outside_window} devices started outside their window, e.g. ${r.outside_window_examples.join('; ')}`,
  );
  add(
    'concurrency within the limit',
    r.peak_concurrent <= r.max_concurrent,
    `peak ${r.peak_concurrent} devices updating at once (devices' side), max_concurrent ${r.max_concurrent}`,
  );
  const per = r.peak_concurrent_per;
  if (per) {
    add(
      `concurrency within the limit per ${per.tag}`,
      per.peak <= per.limit,
      `peak ${per.peak} devices of one ${per.tag} updating at once${per.value === null ? '' : ` (${per.tag}=${per.value || 'none'})`}, max_concurrent_per ${per.limit}`,
    );
  }
  add(
    'no double offer',
    r.double_offers === 0,
    r.double_offers === 0
      ? 'no device was offered the same update twice'
      : `${r.double_offers}: ${r.double_offer_examples.join('; ')}`,
  );
  for (const g of r.gates) {
    if (g.decision !== 'pass' && g.decision !== 'halt') continue;
    if (g.success_rate === null || g.threshold === null) continue;
    const problems: string[] = [];
    if (g.device_success_rate !== null) {
      // Successes are final, so the engine has the devices' own; its failures are theirs plus some unsettled.
      const engineOk = Math.round((g.success_rate * g.finished) / 100);
      const deviceOk = Math.round((g.device_success_rate * g.device_finished) / 100);
      const deviceFailed = g.device_finished - deviceOk;
      const engineFailed = g.finished - engineOk;
      if (
        engineOk !== deviceOk ||
        engineFailed < deviceFailed ||
        engineFailed > deviceFailed + g.device_unsettled
      ) {
        problems.push(
          `the engine saw ${engineOk} succeeded and ${engineFailed} failed, the devices ${deviceOk} succeeded, ` +
            `${deviceFailed} failed and ${g.device_unsettled} unsettled`,
        );
      }
    }
    const overridden = g.reason?.includes('overridden') ?? false;
    if (!overridden && (g.decision === 'pass') !== g.success_rate >= g.threshold) {
      problems.push(`${g.decision} at ${g.success_rate.toFixed(1)}% against a threshold of ${g.threshold}%`);
    }
    // The injected failure rates predict the decision unless the expected rate is within reach of the
    // threshold: failures are spread evenly over the order devices start in (observer.ts), so that reach is
    // two devices' worth once the whole phase has finished, plus sampling noise for its unfinished share.
    const n = g.device_finished;
    if (g.expected_success_rate !== null && n > 0 && !overridden) {
      const p = g.expected_success_rate / 100;
      const unfinished = Math.max(0, 1 - n / Math.max(n, g.phase_devices));
      const margin = (100 * (2 + 3 * Math.sqrt(p * (1 - p) * n * unfinished))) / n;
      const expected =
        g.expected_success_rate >= g.threshold + margin
          ? 'pass'
          : g.expected_success_rate < g.threshold - margin
            ? 'halt'
            : null;
      if (expected !== null && expected !== g.decision) {
        problems.push(
          `the injected failure rates predict ${expected} (expected ${g.expected_success_rate.toFixed(1)}% ± ${margin.toFixed(1)})`,
        );
      }
    }
    add(
      `gate of ${g.name} consistent`,
      problems.length === 0,
      problems.length === 0
        ? `${g.decision} at ${g.success_rate.toFixed(1)}% (threshold ${g.threshold}%, ${g.finished} finished; devices ${g.device_success_rate?.toFixed(1) ?? '—'}%${g.device_unsettled > 0 ? ` and ${g.device_unsettled} unsettled` : ''}, injected rates predict ${g.expected_success_rate?.toFixed(1) ?? '—'}%)`
        : problems.join('; '),
    );
  }
  return checks;
}
