/**
 * The life of one device update (one device in one rollout or assignment): the legal moves, as a table
 * (`isAllowed`). The store writes every state change through one module (store/shared/update-state-writer.ts):
 * a single move is checked with `checkTransition`, a bulk move's `WHERE state IN (…)` is `movableFrom(to, …)`,
 * so no write can make a move the table does not allow. A device holds at most one open update.
 */
import { FleetError } from './errors.js';

export const UPDATE_STATES = [
  'pending',
  'scheduled',
  'notified',
  'downloading',
  'installing',
  'verifying',
  'succeeded',
  'failed',
  'rolled_back',
  'cancelled',
  'skipped',
] as const;
export type UpdateState = (typeof UPDATE_STATES)[number];

/** The states a device itself may report. */
export const DEVICE_REPORTED_STATES = [
  'notified',
  'downloading',
  'installing',
  'verifying',
  'succeeded',
  'failed',
  'rolled_back',
] as const satisfies readonly UpdateState[];
export type DeviceReportedState = (typeof DEVICE_REPORTED_STATES)[number];

/** The forward path; a device may skip ahead on it (e.g. a staged release goes straight to installing). */
const PATH: UpdateState[] = [
  'pending',
  'scheduled',
  'notified',
  'downloading',
  'installing',
  'verifying',
  'succeeded',
];

/** States nothing leaves, except an operator's retry of a failed update (failed → pending). */
export const FINAL_STATES: ReadonlySet<UpdateState> = new Set([
  'succeeded',
  'failed',
  'rolled_back',
  'cancelled',
  'skipped',
]);

/** Updates in these states hold a download slot: the device is working on them. */
export const ACTIVE_STATES: ReadonlySet<UpdateState> = new Set([
  'notified',
  'downloading',
  'installing',
  'verifying',
]);

/**
 * Where the table depends on why an update moves: a decommissioned device never reports again, so every open
 * update of it ends as cancelled, installs under way included (which an operator cannot cancel on a live device);
 * a device's deferral returns an update it has not started installing to pending.
 */
export type MoveRule = 'normal' | 'decommission' | 'defer';

export function isAllowed(from: UpdateState, to: UpdateState, rule: MoveRule = 'normal'): boolean {
  if (rule === 'decommission') return to === 'cancelled' && !FINAL_STATES.has(from);
  // A device deferring an offered update gives its download slot back until the deferral ends (deferral.ts).
  if (rule === 'defer') return to === 'pending' && (from === 'notified' || from === 'downloading');
  if (from === to) return from === 'downloading'; // progress reports
  switch (to) {
    case 'failed':
      return !FINAL_STATES.has(from);
    case 'cancelled':
    case 'skipped':
      return !FINAL_STATES.has(from) && from !== 'installing' && from !== 'verifying';
    case 'rolled_back':
      return from === 'installing' || from === 'verifying' || from === 'succeeded';
    case 'pending':
      return from === 'failed' || from === 'scheduled';
    default: {
      const a = PATH.indexOf(from);
      const b = PATH.indexOf(to);
      return a >= 0 && b > a;
    }
  }
}

/** The states from which an update may move to `to`, in UPDATE_STATES order. */
export function allowedFrom(to: UpdateState, rule: MoveRule = 'normal'): UpdateState[] {
  return UPDATE_STATES.filter((from) => isAllowed(from, to, rule));
}

/**
 * The states among `from` that may move to `to`: the `WHERE state IN (…)` of a bulk move. Throws when one of
 * `from` may not (a caller asking for an illegal move is a bug, found at its first run).
 */
export function movableFrom(
  to: UpdateState,
  from: readonly UpdateState[],
  rule: MoveRule = 'normal',
): UpdateState[] {
  for (const state of from) checkTransition(state, to, rule);
  return [...from];
}

/** Updates still to be acted on or at work: a device holds at most one (store migration 0014). */
export const OPEN_STATES: readonly UpdateState[] = UPDATE_STATES.filter((s) => !FINAL_STATES.has(s));

export function checkTransition(from: UpdateState, to: UpdateState, rule: MoveRule = 'normal'): void {
  if (!isAllowed(from, to, rule)) {
    throw new FleetError('TRANSITION_NOT_ALLOWED', `an update cannot go from ${from} to ${to}`, { from, to });
  }
}
