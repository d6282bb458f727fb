/**
 * How long a dashboard session lives and when repeated sign-in failures lock a name out (docs/access.md,
 * "Dashboard sign-in"). Pure: the server passes the stored state and its clock's time and writes the answer.
 */

export interface SessionPolicy {
  /** A session ends this long after sign-in, used or not. */
  absoluteMs: number;
  /** A session unused this long ends (the open dashboard calls the API every few seconds). */
  idleMs: number;
  /** Its last use is written at most this often, so a busy dashboard costs no write per request. */
  touchEveryMs: number;
}

export const DEFAULT_SESSION_POLICY: SessionPolicy = {
  absoluteMs: 12 * 3_600_000,
  idleMs: 30 * 60_000,
  touchEveryMs: 60_000,
};

export interface LockoutPolicy {
  /** Failures of one name within `windowMs` that lock it. */
  maxFailures: number;
  windowMs: number;
  /** How long a locked name is refused, whatever the password. */
  lockMs: number;
}

export const DEFAULT_LOCKOUT_POLICY: LockoutPolicy = {
  maxFailures: 5,
  windowMs: 15 * 60_000,
  lockMs: 15 * 60_000,
};

/** The failed sign-ins of one name: counted from the first of the window; `lockedUntil` once locked. */
export interface SignInFailures {
  failures: number;
  firstAt: number;
  lockedUntil: number | null;
}

/** Why a session no longer authenticates at `now`, or null while it does. */
export function sessionEnded(
  session: { createdAt: number; lastUsedAt: number },
  now: number,
  policy: SessionPolicy,
): 'expired' | 'idle' | null {
  if (now >= session.createdAt + policy.absoluteMs) return 'expired';
  if (now >= session.lastUsedAt + policy.idleMs) return 'idle';
  return null;
}

/** The time until which a name is locked out, or null when it may try. */
export function lockedUntil(state: SignInFailures | undefined, now: number): number | null {
  return state?.lockedUntil != null && state.lockedUntil > now ? state.lockedUntil : null;
}

/**
 * The state after one more failure: a window that has passed starts again; the failure that reaches
 * `maxFailures` locks the name for `lockMs` and starts a fresh count for after the lock.
 */
export function afterFailedSignIn(
  state: SignInFailures | undefined,
  now: number,
  policy: LockoutPolicy,
): SignInFailures {
  const current = state && now < state.firstAt + policy.windowMs ? state : { failures: 0, firstAt: now };
  const failures = current.failures + 1;
  if (failures >= policy.maxFailures) return { failures: 0, firstAt: now, lockedUntil: now + policy.lockMs };
  return { failures, firstAt: current.firstAt, lockedUntil: null };
}
