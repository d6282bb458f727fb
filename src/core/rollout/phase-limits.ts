/**
 * The download limits in force: those of the rollout's current phase where it sets its own (seed 000: 10 at
 * once for the canary, 100 later), else the rollout's. The current phase's limits hold for every device of the
 * rollout while it is current, devices of earlier phases catching up included: one figure an operator can read.
 */
import type { RatePolicy } from './dispatch.js';
import type { RolloutSpec } from './spec.js';

export interface PhaseLimits {
  maxConcurrent: number;
  rate: RatePolicy | null;
}

export function phaseLimits(
  spec: Pick<RolloutSpec, 'maxConcurrent' | 'rate' | 'phases'>,
  currentPhase: number,
): PhaseLimits {
  const phase = spec.phases[currentPhase];
  return { maxConcurrent: phase?.maxConcurrent ?? spec.maxConcurrent, rate: phase?.rate ?? spec.rate };
}
