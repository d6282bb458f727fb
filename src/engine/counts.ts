/** Slicing a rollout's counts (by phase, purpose and state) into the StateCounts the core rules read. */
import type { StateCounts } from '../core/rollout/counts.js';
import type { UpdatePurpose } from '../core/rollout/offer.js';
import { ACTIVE_STATES, type UpdateState } from '../core/update-state.js';
import type { PhaseStateCount } from '../store/store.js';

/** Device updates not finished: while any is left, the rollout has work to do. */
export const OPEN_UPDATE_STATES_OF_ROLLOUT: ReadonlySet<UpdateState> = new Set<UpdateState>([
  'pending',
  'scheduled',
  ...ACTIVE_STATES,
]);

function sum(rows: readonly PhaseStateCount[]): StateCounts {
  const out: StateCounts = {};
  for (const r of rows) out[r.state] = (out[r.state] ?? 0) + r.count;
  return out;
}

export const purposeCounts = (rows: readonly PhaseStateCount[], purpose: UpdatePurpose): StateCounts =>
  sum(rows.filter((r) => r.purpose === purpose));

export const phaseCounts = (
  rows: readonly PhaseStateCount[],
  phase: number,
  purpose: UpdatePurpose,
): StateCounts => sum(rows.filter((r) => r.phase === phase && r.purpose === purpose));
