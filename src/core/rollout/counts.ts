/**
 * Counting device updates by state: the one definition of "finished", "active" and success rate that
 * gates, progress and ETA share.
 */
import { ACTIVE_STATES, UPDATE_STATES, type UpdateState } from '../update-state.js';

/** How many device updates are in each state (missing states count 0). */
export type StateCounts = Partial<Record<UpdateState, number>>;

export interface Tally {
  total: number;
  succeeded: number;
  /** failed + rolled_back: both are the release not working on that device. */
  failed: number;
  /** succeeded + failed + rolled_back: the devices that give evidence about the release. */
  finished: number;
  /** notified … verifying: holding a download slot. */
  active: number;
  /** pending + scheduled: not started yet (typically offline, or waiting for a slot or a window). */
  waiting: number;
  /** cancelled + skipped: never tried, so neither success nor failure. */
  excluded: number;
  /** succeeded / finished in percent; null while nothing has finished. */
  successRate: number | null;
}

export function tally(counts: StateCounts): Tally {
  const n = (s: UpdateState) => counts[s] ?? 0;
  const succeeded = n('succeeded');
  const failed = n('failed') + n('rolled_back');
  const finished = succeeded + failed;
  let active = 0;
  for (const s of ACTIVE_STATES) active += n(s);
  return {
    total: UPDATE_STATES.reduce((sum, s) => sum + n(s), 0),
    succeeded,
    failed,
    finished,
    active,
    waiting: n('pending') + n('scheduled'),
    excluded: n('cancelled') + n('skipped'),
    successRate: finished === 0 ? null : (succeeded * 100) / finished,
  };
}
