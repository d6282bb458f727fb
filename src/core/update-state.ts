/**
 * The life of one device update (one device in one rollout or assignment). Every transition goes through
 * `checkTransition`, so the store never writes a state change the rules do not allow.
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

export function isAllowed(from: UpdateState, to: UpdateState): boolean {
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

export function checkTransition(from: UpdateState, to: UpdateState): void {
  if (!isAllowed(from, to)) {
    throw new FleetError('TRANSITION_NOT_ALLOWED', `an update cannot go from ${from} to ${to}`, { from, to });
  }
}
