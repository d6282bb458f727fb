/**
 * A rehearsal of a rollout not created yet (core/rollout/rehearsal.ts) on a snapshot of the registry: its
 * plan's targets with what their status history taught (the ETA's and reachability's data), their zones and
 * phases, the update times of earlier rollouts on their hardware. Reads the store; writes nothing.
 */
import { LocalHours, learnPresence } from '../core/rollout/presence.js';
import {
  REHEARSAL_LIMITS,
  type RehearsalInput,
  type RehearsalPhase,
  type RehearsalSummary,
  rehearse,
  smallestMaxConcurrent,
} from '../core/rollout/rehearsal.js';
import type { RolloutSpec } from '../core/rollout/spec.js';
import type { Store, TimeContext } from '../store/store.js';
import { evenSample, readHistories } from './progress.js';
import type { PlannedRollout } from './rollout-service.js';

/** Finished updates on the targets' hardware the install times are drawn from. */
const DURATIONS = 500;

export interface RehearsalOptions {
  /** Share of attempts that fail (0…1). */
  failureRate: number;
  seeds: number;
  /** Find the smallest max_concurrent whose P90 finish is before this instant. */
  deadline?: number | null;
}

export interface RehearsalResult extends RehearsalSummary {
  targets: number;
  /** Targets followed: all of them, or an even sample of REHEARSAL_LIMITS.devices with limits scaled alike. */
  rehearsed: number;
  updateTimeSource: 'history' | 'default';
  updateTimeSamples: number;
  failureRate: number;
  limits: typeof REHEARSAL_LIMITS;
  deadline: { at: number; maxConcurrent: number | null; p90At: number | null } | null;
}

export async function rehearsePlan(
  store: Store,
  planned: PlannedRollout,
  ctx: TimeContext,
  options: RehearsalOptions,
): Promise<RehearsalResult> {
  const { spec, plan } = planned;
  const targets = plan.targets.filter((t) => t.state !== 'skipped');
  // Above the cap, every k-th target stands for k of them, and the slots shrink by the same share.
  const sample = evenSample(targets, planned.devices, REHEARSAL_LIMITS.devices);
  const clock = new LocalHours();
  const histories = await readHistories(store, sample, ctx);
  const presence = learnPresence(histories, ctx.now, clock);
  const hardware = [...new Set(sample.flatMap((d) => (d.hardwareType ? [d.hardwareType] : [])))];
  const updateTimes = await store.rollouts.hardwareUpdateDurations(hardware, null, DURATIONS);
  const share = sample.length / Math.max(1, targets.length);
  const scale = (n: number) => Math.max(1, Math.round(n * share));
  let batches = 1;
  for (const t of targets) batches = Math.max(batches, t.phase + 1);
  const input: RehearsalInput = {
    devices: sample.map((d, i) => ({ phase: d.phase, presence: presence[i]! })),
    phases: rehearsalPhases(spec, batches).map((p) => ({
      ...p,
      maxConcurrent: p.maxConcurrent == null ? null : scale(p.maxConcurrent),
    })),
    strategy: spec.strategy,
    maxConcurrent: scale(spec.maxConcurrent),
    rate: spec.rate,
    retry: spec.retry,
    window: spec.window,
    missedWindow: spec.missedWindow,
    notBefore: spec.scheduledAt ?? plan.startsAt,
    endAt: spec.endAt,
    updateTimes,
    failureRate: options.failureRate,
    now: ctx.now,
    clock,
  };
  const summary = rehearse(input, options.seeds);
  let deadline: RehearsalResult['deadline'] = null;
  if (options.deadline != null) {
    const found = smallestMaxConcurrent(input, options.deadline, options.seeds);
    deadline = {
      at: options.deadline,
      // Back to the fleet's scale.
      maxConcurrent: found ? Math.max(1, Math.round(found.maxConcurrent / share)) : null,
      p90At: found?.p90At ?? null,
    };
  }
  return {
    ...summary,
    targets: targets.length,
    rehearsed: sample.length,
    updateTimeSource: updateTimes.length > 0 ? 'history' : 'default',
    updateTimeSamples: updateTimes.length,
    failureRate: options.failureRate,
    limits: REHEARSAL_LIMITS,
    deadline,
  };
}

/** Progressive phases with their gates, rolling batches, or one phase for the rest. */
function rehearsalPhases(spec: RolloutSpec, batches: number): RehearsalPhase[] {
  if (spec.strategy === 'progressive') {
    return spec.phases.map((p) => ({
      name: p.name,
      waitMs: p.waitMs,
      quorum: p.quorum,
      successRate: p.successRate,
      maxConcurrent: p.maxConcurrent,
      rate: p.rate,
    }));
  }
  if (spec.strategy === 'rolling') {
    return Array.from({ length: batches }, (_, i) => ({ name: `batch ${i + 1}`, waitMs: 0 }));
  }
  return [{ name: 'all', waitMs: 0 }];
}
