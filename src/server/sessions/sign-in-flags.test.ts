import { describe, expect, it } from 'vitest';
import { DEFAULT_LOCKOUT_POLICY, DEFAULT_SESSION_POLICY } from '../../core/sign-in-policy.js';
import { signInPoliciesFromFlags } from './sign-in-flags.js';

describe('sign-in policy flags', () => {
  it('keeps the defaults for flags left out', () => {
    expect(signInPoliciesFromFlags({})).toEqual({
      session: DEFAULT_SESSION_POLICY,
      lockout: DEFAULT_LOCKOUT_POLICY,
    });
  });

  it('reads each flag with the duration parser', () => {
    expect(
      signInPoliciesFromFlags({
        sessionLifetime: '8h',
        sessionIdle: '20m',
        lockoutFailures: '3',
        lockoutWindow: '10m',
        lockoutTime: '1h',
      }),
    ).toEqual({
      session: { absoluteMs: 8 * 3_600_000, idleMs: 20 * 60_000, touchEveryMs: 60_000 },
      lockout: { maxFailures: 3, windowMs: 10 * 60_000, lockMs: 3_600_000 },
    });
  });

  it('writes the last use of a session with a short idle time often enough to keep it while used', () => {
    expect(signInPoliciesFromFlags({ sessionIdle: '90s' }).session).toMatchObject({
      idleMs: 90_000,
      touchEveryMs: 45_000,
    });
  });

  it('refuses bad values with a message naming the flag', () => {
    for (const [flags, message] of [
      [{ sessionLifetime: '12 hours' }, /^--session-lifetime: "12 hours" is not a duration/],
      [{ sessionIdle: '0s' }, /^--session-idle: "0s" must be longer than 0$/],
      [
        { sessionIdle: '13h' },
        /^--session-idle \(13h\) must not be longer than --session-lifetime \(default 12h\)$/,
      ],
      [{ sessionLifetime: '1h', sessionIdle: '2h' }, /--session-lifetime \(1h\)$/],
      [{ lockoutFailures: '0' }, /^--lockout-failures: "0" must be a whole number from 1 to 1000$/],
      [{ lockoutFailures: '2.5' }, /^--lockout-failures: "2.5" must be a whole number/],
      [{ lockoutFailures: '-1' }, /^--lockout-failures: "-1" must be/],
      [{ lockoutFailures: '1001' }, /^--lockout-failures: "1001" must be/],
      [{ lockoutWindow: 'soon' }, /^--lockout-window: "soon" is not a duration/],
      [{ lockoutTime: '0m' }, /^--lockout-time: "0m" must be longer than 0$/],
      [{ lockoutTime: '99999d' }, /^--lockout-time: "99999d" is longer than the maximum of 3650d$/],
    ] as const) {
      expect(() => signInPoliciesFromFlags(flags)).toThrow(message);
    }
  });
});
