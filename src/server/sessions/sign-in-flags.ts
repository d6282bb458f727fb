/**
 * `fleetd server`'s sign-in policy flags (docs/access.md, "Dashboard sign-in"): `--session-lifetime`,
 * `--session-idle`, `--lockout-failures`, `--lockout-window` and `--lockout-time`, read into the policies of
 * core/sign-in-policy.ts. Each flag left out keeps its default; a bad value is a VALIDATION error naming it.
 */
import { parseDuration } from '../../core/duration.js';
import { FleetError } from '../../core/errors.js';
import { DEFAULT_LOCKOUT_POLICY, DEFAULT_SESSION_POLICY } from '../../core/sign-in-policy.js';
import type { SignInPolicies } from './password-sign-in.js';

export interface SignInFlags {
  sessionLifetime?: string | undefined;
  sessionIdle?: string | undefined;
  lockoutFailures?: string | undefined;
  lockoutWindow?: string | undefined;
  lockoutTime?: string | undefined;
}

/** Failures before a lock-out: beyond this the lock-out no longer protects anything. */
const MAX_LOCKOUT_FAILURES = 1_000;

function positiveDuration(text: string | undefined, flag: string, fallback: number): number {
  if (text === undefined) return fallback;
  const ms = parseDuration(text, flag);
  if (ms <= 0)
    throw new FleetError('VALIDATION', `${flag}: "${text}" must be longer than 0`, { field: flag });
  return ms;
}

export function signInPoliciesFromFlags(flags: SignInFlags): SignInPolicies {
  const absoluteMs = positiveDuration(
    flags.sessionLifetime,
    '--session-lifetime',
    DEFAULT_SESSION_POLICY.absoluteMs,
  );
  const idleMs = positiveDuration(flags.sessionIdle, '--session-idle', DEFAULT_SESSION_POLICY.idleMs);
  if (idleMs > absoluteMs) {
    throw new FleetError(
      'VALIDATION',
      `--session-idle (${flags.sessionIdle ?? 'default 30m'}) must not be longer than --session-lifetime (${flags.sessionLifetime ?? 'default 12h'})`,
      { field: '--session-idle' },
    );
  }
  let maxFailures = DEFAULT_LOCKOUT_POLICY.maxFailures;
  if (flags.lockoutFailures !== undefined) {
    maxFailures = Number(flags.lockoutFailures);
    if (!/^\d+$/.test(flags.lockoutFailures) || maxFailures < 1 || maxFailures > MAX_LOCKOUT_FAILURES) {
      throw new FleetError(
        'VALIDATION',
        `--lockout-failures: "${flags.lockoutFailures}" must be a whole number from 1 to ${MAX_LOCKOUT_FAILURES}`,
        { field: '--lockout-failures' },
      );
    }
  }
  return {
    session: {
      absoluteMs,
      idleMs,
      // A session's last use must be written well within its idle time, or one in use would end.
      touchEveryMs: Math.min(DEFAULT_SESSION_POLICY.touchEveryMs, Math.floor(idleMs / 2)),
    },
    lockout: {
      maxFailures,
      windowMs: positiveDuration(flags.lockoutWindow, '--lockout-window', DEFAULT_LOCKOUT_POLICY.windowMs),
      lockMs: positiveDuration(flags.lockoutTime, '--lockout-time', DEFAULT_LOCKOUT_POLICY.lockMs),
    },
  };
}
