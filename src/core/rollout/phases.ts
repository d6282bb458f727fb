/**
 * Progressive, rolling and blue-green planning and gates: how many devices each phase gets, which
 * devices are the canaries, and whether a phase may hand over to the next.
 */
import { type StateCounts, tally } from './counts.js';
import type { RatePolicy } from './dispatch.js';
import type { HealthPolicy } from './health-gate.js';
import { shuffle } from './random.js';

export interface Phase {
  name: string;
  /** Cumulative share of the target set reached by the end of this phase, 0 < p ≤ 100. */
  percentage: number;
  /** Soak time: how long after the phase starts its gate is judged. */
  waitMs: number;
  /** Minimum success rate in percent over the phase's finished devices. */
  successRate: number;
  /** manual: after passing, wait for an operator before the next phase starts. */
  approval: 'manual' | 'auto';
  /** Share (percent) of the phase's devices that must have finished before the gate judges (at least one). */
  quorum: number;
  /** Downloads at once while this phase is current; null: the rollout's (seed 000: 10 for the canary). */
  maxConcurrent: number | null;
  /** Devices started per minute while this phase is current; null: the rollout's. */
  rate: RatePolicy | null;
  /** The health gate over each updated device's soak window (docs/health-gates.md); absent: none. */
  health?: HealthPolicy;
}

/** Abort at any time once `minFinished` updates finished and failed ones reach `failureRate` percent. */
export interface AbortPolicy {
  failureRate: number;
  minFinished: number;
}

/** Half of a phase's devices must have finished before its gate judges: see `gateDecision`. */
export const DEFAULT_QUORUM = 50;

export interface PhaseSize {
  /** Devices reached by the end of this phase. */
  cumulative: number;
  /** Devices this phase adds. */
  size: number;
}

/**
 * Cumulative device counts per phase: ⌈total × p / 100⌉ (so a phase reaches at least its share), at
 * least 1 for the first phase when there is any device, never decreasing, the last exactly `total`.
 * A later phase can add 0 devices on a small fleet (3 devices, 1% then 10%); its gate then passes at once.
 */
export function phaseSizes(total: number, percentages: readonly number[]): PhaseSize[] {
  let previous = 0;
  return percentages.map((p, i) => {
    const last = i === percentages.length - 1;
    // The epsilon keeps float noise (e.g. 0.1% of 1000) from rounding a whole device up.
    let cumulative = last ? total : Math.min(total, Math.ceil((total * p) / 100 - 1e-9));
    if (i === 0 && total > 0) cumulative = Math.max(1, cumulative);
    cumulative = Math.max(previous, cumulative);
    const size = cumulative - previous;
    previous = cumulative;
    return { cumulative, size };
  });
}

export interface Candidate {
  id: string;
  online: boolean;
}

/**
 * The order in which devices join phases: online devices first (they can report within the soak
 * time), random within each group. Deterministic for a seed whatever order the candidates come in, so
 * a recorded seed reproduces the choice and a dry run shows the devices the real run will pick.
 */
export function rolloutOrder<T extends Candidate>(candidates: readonly T[], seed: number): T[] {
  // The store hands devices over by id already: checking costs a pass, sorting a million ids half a second.
  const byId = sortedById(candidates)
    ? candidates
    : [...candidates].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const online = shuffle(
    byId.filter((c) => c.online),
    seed,
  );
  const offline = shuffle(
    byId.filter((c) => !c.online),
    seed ^ 0x9e3779b9,
  );
  return [...online, ...offline];
}

function sortedById(candidates: readonly Candidate[]): boolean {
  for (let i = 1; i < candidates.length; i++) if (!(candidates[i - 1]!.id < candidates[i]!.id)) return false;
  return true;
}

export function pickCanaries<T extends Candidate>(
  candidates: readonly T[],
  count: number,
  seed: number,
): T[] {
  return rolloutOrder(candidates, seed).slice(0, Math.max(0, count));
}

export type GateDecision =
  | { kind: 'wait'; until: number | null; reason: string }
  | { kind: 'pass'; successRate: number | null }
  | { kind: 'halt'; successRate: number | null; reason: string }
  | { kind: 'await_approval'; successRate: number };

export interface GateInput {
  phase: Pick<Phase, 'waitMs' | 'successRate' | 'approval' | 'quorum'>;
  startedAt: number;
  now: number;
  /** The phase's own devices (not the cumulative set). */
  counts: StateCounts;
  /** An operator approved the next phase (only read when approval is manual). */
  approved?: boolean;
  abort?: AbortPolicy | null;
}

const pct = (n: number) => `${Math.round(n * 10) / 10}%`;

/**
 * Whether a phase holds, passes or halts. In order:
 * 1. abort: failures reached the abort rate over enough finished updates → halt, at any time;
 * 2. already lost: even if every unfinished device succeeded the threshold could not be met → halt early
 *    (the finished-only rate judged later can only be lower);
 * 3. empty phase (small fleets, or every device skipped) → pass: there is nothing to observe;
 * 4. soaking: before startedAt + wait → wait until then;
 * 5. quorum: judge only once at least one device, and `quorum`% of the phase's devices, have finished
 *    → otherwise wait (until: null = re-check on the next report);
 * 6. the success rate over FINISHED devices must reach the threshold → else halt.
 *    Devices that have not finished at soak end (offline, still waiting, or updating) count neither for
 *    nor against the rate: they stay in the phase and update when they connect, so one offline canary
 *    cannot block a rollout forever, and a failure they report later still counts for `abort`.
 * 7. manual approval → await_approval until approved; otherwise pass.
 */
export function gateDecision(input: GateInput): GateDecision {
  const { phase, startedAt, now, counts } = input;
  const t = tally(counts);
  const aborted = abortDecision(input.abort, counts);
  if (aborted) return aborted;
  const unfinished = t.total - t.excluded - t.finished;
  if (
    unfinished + t.finished > 0 &&
    (t.succeeded + unfinished) * 100 < phase.successRate * (t.finished + unfinished)
  ) {
    return {
      kind: 'halt',
      successRate: t.successRate,
      reason: `success rate can no longer reach ${pct(phase.successRate)} (${t.failed} of ${t.finished + unfinished} failed)`,
    };
  }
  const judged = t.total - t.excluded;
  if (judged === 0) return { kind: 'pass', successRate: null };
  const soakEnd = startedAt + phase.waitMs;
  if (now < soakEnd) return { kind: 'wait', until: soakEnd, reason: 'soaking' };
  const needed = Math.max(1, Math.ceil((judged * phase.quorum) / 100 - 1e-9));
  if (t.finished < needed) {
    return { kind: 'wait', until: null, reason: `${t.finished} of ${needed} devices needed have finished` };
  }
  if (t.succeeded * 100 < phase.successRate * t.finished) {
    return {
      kind: 'halt',
      successRate: t.successRate,
      reason: `success rate ${pct(t.successRate!)} is below ${pct(phase.successRate)}`,
    };
  }
  if (phase.approval === 'manual' && !input.approved)
    return { kind: 'await_approval', successRate: t.successRate! };
  return { kind: 'pass', successRate: t.successRate };
}

/** The abort criterion alone, for any strategy: a halt decision, or null to carry on. */
export function abortDecision(
  abort: AbortPolicy | null | undefined,
  counts: StateCounts,
): Extract<GateDecision, { kind: 'halt' }> | null {
  if (!abort) return null;
  const t = tally(counts);
  if (t.finished < abort.minFinished || t.failed * 100 < abort.failureRate * t.finished) return null;
  return {
    kind: 'halt',
    successRate: t.successRate,
    reason: `abort: ${t.failed} of ${t.finished} finished updates failed (≥ ${pct(abort.failureRate)})`,
  };
}

/**
 * Rolling: the next batch starts once the current one is finished. Devices that never started because
 * they are offline do not hold the batch (they update when they connect); only those updating now, or
 * online and still waiting for their turn (`waitingOnline`), do.
 */
export function batchFinished(counts: StateCounts, waitingOnline: number): boolean {
  return tally(counts).active === 0 && waitingOnline === 0;
}

export function batchCount(total: number, batchSize: number): number {
  return Math.ceil(total / batchSize);
}

export type BlueGreenDecision =
  | { kind: 'stage'; stagedShare: number }
  | { kind: 'switch'; reason: 'promoted' | 'staged_share_reached'; stagedShare: number };

/**
 * Blue-green: every target stages the release into its inactive slot; all switch together when an
 * operator promotes, or by themselves once `switchAt` percent of the targets have staged (null: only on
 * promote). Devices that stage later switch as soon as they have staged.
 */
export function blueGreenDecision(input: {
  targets: number;
  staged: number;
  promoted: boolean;
  switchAt: number | null;
}): BlueGreenDecision {
  const stagedShare = input.targets === 0 ? 100 : (input.staged * 100) / input.targets;
  if (input.promoted) return { kind: 'switch', reason: 'promoted', stagedShare };
  if (input.switchAt !== null && input.targets > 0 && input.staged * 100 >= input.switchAt * input.targets) {
    return { kind: 'switch', reason: 'staged_share_reached', stagedShare };
  }
  return { kind: 'stage', stagedShare };
}
