/**
 * The life of a rollout. Every change of state goes through `checkRolloutTransition`, so the engine and the
 * operator commands can only make the moves listed here.
 *
 *   scheduled ─start─▶ running ─gate fails / abort─▶ halted
 *        │               │  ▲                          │
 *        │             pause resume ◀──────────────────┘ (an operator overrides the halt)
 *        │               ▼  │
 *        │             paused
 *   any open state ─cancel─▶ cancelled;  running ─all done─▶ completed
 *   anything but rolled_back ─rollback─▶ rolled_back (devices return to the version they had); rollback
 *   again on rolled_back retries the devices that had no release to return to
 */
import { FleetError } from '../errors.js';

export const ROLLOUT_STATES = [
  'draft',
  'scheduled',
  'running',
  'paused',
  'halted',
  'completed',
  'cancelled',
  'rolled_back',
] as const;
export type RolloutState = (typeof ROLLOUT_STATES)[number];

/** States in which a rollout still has work to do: the engine reconciles these. */
export const OPEN_ROLLOUT_STATES: readonly RolloutState[] = [
  'draft',
  'scheduled',
  'running',
  'paused',
  'halted',
];

const NEXT: Record<RolloutState, readonly RolloutState[]> = {
  draft: ['scheduled', 'running', 'cancelled'],
  scheduled: ['running', 'paused', 'cancelled'],
  running: ['paused', 'halted', 'completed', 'cancelled', 'rolled_back'],
  paused: ['running', 'scheduled', 'cancelled', 'rolled_back'],
  halted: ['running', 'cancelled', 'rolled_back'],
  completed: ['rolled_back'],
  cancelled: ['rolled_back'],
  rolled_back: [],
};

export function rolloutTransitionAllowed(from: RolloutState, to: RolloutState): boolean {
  return NEXT[from].includes(to);
}

export function checkRolloutTransition(from: RolloutState, to: RolloutState): void {
  if (!rolloutTransitionAllowed(from, to)) {
    throw new FleetError('TRANSITION_NOT_ALLOWED', `a ${from} rollout cannot become ${to}`, { from, to });
  }
}

/** The operator commands and the state each leads to. */
export const ROLLOUT_COMMANDS = ['pause', 'resume', 'cancel', 'approve', 'promote', 'rollback'] as const;
export type RolloutCommand = (typeof ROLLOUT_COMMANDS)[number];
