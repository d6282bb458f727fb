/**
 * Rolling a staged configuration version out with a strategy (docs/configuration.md): the plan (phases, soak,
 * failure limit) checked before anything is written, how many devices each phase reaches, and the decision of one
 * driver step. Pure: the driver (engine/config-rollout-driver.ts) reads the counts and writes what this decides.
 * The rules are the firmware rollouts' own (core/rollout/phases.ts): phase sizes, and the gate with a quorum of
 * every device of the phase.
 */
import { DURATION_LIMITS, parseDuration } from './duration.js';
import { FleetError } from './errors.js';
import { gateDecision, phaseSizes } from './rollout/phases.js';

/** A phase reaches, cumulatively, a share of the devices the staged version applies to, or a number of them. */
export type ConfigRolloutPhase = { percentage: number } | { devices: number };

export interface ConfigRolloutPlan {
  phases: ConfigRolloutPhase[];
  /** How long each phase soaks after it starts before its gate judges it. */
  soakMs: number;
  /** Halt once more than this percent of a phase's devices failed (0: any failure halts). */
  maxFailureRate: number;
  /** After the last phase, make the staged version the document's current version. */
  promote: boolean;
}

export const CONFIG_ROLLOUT_STATES = ['running', 'paused', 'halted', 'completed', 'cancelled'] as const;
export type ConfigRolloutState = (typeof CONFIG_ROLLOUT_STATES)[number];
/** A document has at most one rollout in these states. */
export const ACTIVE_CONFIG_ROLLOUT_STATES: readonly ConfigRolloutState[] = ['running', 'paused', 'halted'];

export const DEFAULT_CONFIG_PHASES = '1,10%,50%,100%';
export const DEFAULT_CONFIG_SOAK = '10m';
export const DEFAULT_MAX_FAILURE_RATE = 5;
/** As many as a firmware rollout's spec takes. */
export const MAX_CONFIG_PHASES = 20;

const fail = (field: string, message: string): never => {
  throw new FleetError('VALIDATION', `${field}: ${message}`, { field });
};

/** "1,10%,50%,100%": a bare number is that many devices, a percentage a share of them; the last must be 100%. */
export function parsePhaseList(text: string, field = 'phases'): ConfigRolloutPhase[] {
  const parts = text.split(',').map((p) => p.trim());
  return checkPhases(
    parts.map((p) => {
      const percent = p.endsWith('%');
      const n = Number(percent ? p.slice(0, -1) : p);
      if (p === '' || p === '%' || !Number.isFinite(n)) fail(field, `"${p}" is not a number or a percentage`);
      return percent ? { percentage: n } : { devices: n };
    }),
    field,
  );
}

/** Percentages above 0 up to 100 that grow, device counts that are whole and grow, the last phase 100%. */
export function checkPhases(phases: readonly ConfigRolloutPhase[], field = 'phases'): ConfigRolloutPhase[] {
  if (phases.length === 0) fail(field, 'at least one phase');
  if (phases.length > MAX_CONFIG_PHASES) fail(field, `at most ${MAX_CONFIG_PHASES} phases`);
  let percentage = 0;
  let devices = 0;
  phases.forEach((p, i) => {
    const at = `${field}[${i}]`;
    if ('percentage' in p) {
      if (!(p.percentage > 0 && p.percentage <= 100))
        fail(at, `${p.percentage}% must be above 0 and at most 100`);
      if (p.percentage <= percentage)
        fail(at, `${p.percentage}% must be more than the phase before (${percentage}%)`);
      percentage = p.percentage;
    } else {
      if (!Number.isInteger(p.devices) || p.devices < 1)
        fail(at, `${p.devices} devices: a whole number from 1`);
      if (p.devices <= devices)
        fail(at, `${p.devices} devices must be more than the phase before (${devices})`);
      devices = p.devices;
    }
  });
  const last = phases[phases.length - 1]!;
  if (!('percentage' in last) || last.percentage !== 100) fail(field, 'the last phase must be 100%');
  return phases.map((p) => ({ ...p }));
}

/** A percentage from 0 to 100, "5%" or 5. */
export function parseFailureRate(value: string | number, field = 'max_failure_rate'): number {
  const n = typeof value === 'number' ? value : Number(value.trim().replace(/%$/, ''));
  if (typeof value === 'string' && value.trim() === '') fail(field, 'a percentage from 0 to 100');
  if (!(Number.isFinite(n) && n >= 0 && n <= 100))
    fail(field, `"${value}" must be a percentage from 0 to 100`);
  return n;
}

/** The API's input (phases as text or objects, soak as a duration text) checked into a plan. */
export function checkConfigRolloutPlan(input: {
  phases?: string | ConfigRolloutPhase[] | undefined;
  soak?: string | undefined;
  max_failure_rate?: number | string | undefined;
  promote?: boolean | undefined;
}): ConfigRolloutPlan {
  const phases =
    input.phases === undefined
      ? parsePhaseList(DEFAULT_CONFIG_PHASES)
      : typeof input.phases === 'string'
        ? parsePhaseList(input.phases)
        : checkPhases(input.phases);
  return {
    phases,
    soakMs: parseDuration(input.soak ?? DEFAULT_CONFIG_SOAK, 'soak', DURATION_LIMITS.wait),
    maxFailureRate:
      input.max_failure_rate === undefined
        ? DEFAULT_MAX_FAILURE_RATE
        : parseFailureRate(input.max_failure_rate),
    promote: input.promote ?? false,
  };
}

/** "1", "10%": how a phase reads in messages and the CLI. */
export const phaseText = (p: ConfigRolloutPhase): string =>
  'percentage' in p ? `${p.percentage}%` : `${p.devices}`;

/**
 * The devices reached by the end of each phase, of `total`: a share rounds up (phaseSizes), a count is at most
 * `total`, never fewer than the phase before, the last exactly `total`.
 */
export function phaseTargets(total: number, phases: readonly ConfigRolloutPhase[]): number[] {
  if (total === 0) return phases.map(() => 0);
  // A count is the share it makes of today's total, so phaseSizes' one rule applies to both.
  const shares = phases.map((p) =>
    'percentage' in p ? p.percentage : (Math.min(p.devices, total) * 100) / total,
  );
  return phaseSizes(total, shares).map((s) => s.cumulative);
}

/** What the devices a phase released reported on the staged version. */
export interface PhaseCounts {
  released: number;
  applied: number;
  failed: number;
}

export interface StepInput {
  plan: ConfigRolloutPlan;
  /** The current phase (0-based) and when it started. */
  phase: number;
  phaseStartedAt: number;
  now: number;
  /** Devices the staged version applies to now, and how many it was released to (by anyone). */
  reach: number;
  released: number;
  /** The current phase's own devices: those released since it started. */
  counts: PhaseCounts;
}

export type StepDecision =
  /** Release the staged version to `count` more devices: the phase's share is not reached yet. */
  | { kind: 'release'; count: number }
  | { kind: 'wait'; reason: string }
  | { kind: 'next' }
  | { kind: 'complete' }
  | { kind: 'halt'; reason: string };

/**
 * One step of a running rollout: release up to the phase's share first; then the gate over the phase's own
 * devices (gateDecision, every device must have reported, after the soak; a phase that can no longer stay
 * under the limit halts at once): next phase, the end, a halt naming the counts, or wait.
 */
export function configRolloutStep(input: StepInput): StepDecision {
  const { plan, phase, counts } = input;
  const target = phaseTargets(input.reach, plan.phases)[phase] ?? input.reach;
  if (input.released < target) return { kind: 'release', count: target - input.released };
  const pending = Math.max(0, counts.released - counts.applied - counts.failed);
  const gate = gateDecision({
    phase: { waitMs: plan.soakMs, successRate: 100 - plan.maxFailureRate, approval: 'auto', quorum: 100 },
    startedAt: input.phaseStartedAt,
    now: input.now,
    counts: { succeeded: counts.applied, failed: counts.failed, pending },
  });
  const name = `phase ${phase + 1} of ${plan.phases.length} (${phaseText(plan.phases[phase]!)})`;
  switch (gate.kind) {
    case 'halt':
      return {
        kind: 'halt',
        reason: `${name}: ${counts.failed} of ${counts.released} devices failed (${counts.applied} applied, ${pending} not reported yet), over the ${plan.maxFailureRate}% limit`,
      };
    case 'wait':
      return {
        kind: 'wait',
        reason:
          gate.until === null
            ? `${name}: ${pending} of ${counts.released} devices have not reported yet`
            : `${name}: soaking until ${new Date(gate.until).toISOString()}`,
      };
    default:
      return phase + 1 < plan.phases.length ? { kind: 'next' } : { kind: 'complete' };
  }
}
