/**
 * Overlapping rollouts: a target that already waits for an update of another open rollout gets the outcome
 * the new rollout's spec chose (`overlap`), never the accident of which write came last. `newest_wins` (the
 * default, as before) takes the device over; `priority` takes it only from a rollout of lower `priority`
 * (a tie keeps it where it is); `refuse` creates nothing while any target waits elsewhere. A device already
 * installing elsewhere is never taken: it is left out as busy, whatever the policy.
 */
import type { RolloutSpec } from './spec.js';

export const OVERLAP_POLICIES = ['newest_wins', 'priority', 'refuse'] as const;
export type OverlapPolicy = (typeof OVERLAP_POLICIES)[number];

/** The open rollout a device waits in (its update not started yet). */
export interface WaitingElsewhere {
  rolloutId: string;
  name: string;
  priority: number;
}

/** superseded: the new rollout takes the device; kept: it stays with the other; refused: nothing is created. */
export type OverlapOutcome = 'superseded' | 'kept' | 'refused';

export interface OverlapConflict extends WaitingElsewhere {
  devices: number;
  outcome: OverlapOutcome;
}

type OverlapSpec = Pick<RolloutSpec, 'overlap' | 'priority'>;

export function overlapOutcome(spec: OverlapSpec, other: WaitingElsewhere): OverlapOutcome {
  if (spec.overlap === 'refuse') return 'refused';
  if (spec.overlap === 'priority') return spec.priority > other.priority ? 'superseded' : 'kept';
  return 'superseded';
}

/** Why a device stays with the other rollout, or null when the new one takes it. */
export function overlapSkipReason(spec: OverlapSpec, other: WaitingElsewhere | null): string | null {
  if (other === null) return null;
  const outcome = overlapOutcome(spec, other);
  if (outcome === 'kept') {
    return `waits in rollout ${other.rolloutId} of priority ${other.priority} (this one: ${spec.priority})`;
  }
  if (outcome === 'refused') return `waits in rollout ${other.rolloutId} (overlap: refuse)`;
  return null;
}

/** The conflicts of a plan, one per other rollout with its device count, by rollout name (then id). */
export function overlapConflicts(
  spec: OverlapSpec,
  devices: ReadonlyArray<{ waitingIn?: WaitingElsewhere | null }>,
): OverlapConflict[] {
  const byRollout = new Map<string, OverlapConflict>();
  for (const d of devices) {
    const other = d.waitingIn;
    if (!other) continue;
    const c = byRollout.get(other.rolloutId);
    if (c) c.devices++;
    else byRollout.set(other.rolloutId, { ...other, devices: 1, outcome: overlapOutcome(spec, other) });
  }
  const key = (c: OverlapConflict) => [c.name, c.rolloutId] as const;
  return [...byRollout.values()].sort((a, b) => {
    const [x, y] = [key(a), key(b)];
    return x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0;
  });
}
