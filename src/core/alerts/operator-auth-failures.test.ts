import { describe, expect, it } from 'vitest';
import { parseAlertRules } from './alert-rule.js';
import { operatorAuthFailures } from './operator-auth-failures.js';

describe('operatorAuthFailures', () => {
  const entry = (action: string, outcome: number, data: Record<string, unknown> = {}) => ({
    action,
    outcome,
    data,
  });

  it('counts a refused operator token or password once, and no device failure', () => {
    expect(
      operatorAuthFailures(entry('auth.failed', 401, { api: 'operator', path: '/api/v1/devices' })),
    ).toBe(1);
    expect(operatorAuthFailures(entry('auth.failed', 429, { api: 'operator', reason: 'RATE_LIMITED' }))).toBe(
      1,
    );
    expect(operatorAuthFailures(entry('auth.failed', 401, { api: 'device' }))).toBe(0);
  });

  it('counts a window summary by the failures it did not record one by one, when operators were among them', () => {
    const summary = (apis: string[]) => entry('auth.failed', 401, { count: 40, suppressed: 35, apis });
    expect(operatorAuthFailures(summary(['operator']))).toBe(35);
    expect(operatorAuthFailures(summary(['device', 'operator']))).toBe(35);
    expect(operatorAuthFailures(summary(['device']))).toBe(0);
  });

  it('counts a refused sign-in that is not a 401 (a 401 has its own auth.failed entry), and no success', () => {
    expect(operatorAuthFailures(entry('sign-in', 429, { failure: 'locked' }))).toBe(1);
    expect(operatorAuthFailures(entry('sign-in', 403, { failure: 'no_role' }))).toBe(1);
    expect(operatorAuthFailures(entry('sign-in', 401, { failure: 'bad_credentials' }))).toBe(0);
    expect(operatorAuthFailures(entry('sign-in', 200))).toBe(0);
    expect(operatorAuthFailures(entry('POST /api/v1/tokens', 403))).toBe(0);
  });
});

describe('the operator_auth_failures rule', () => {
  it('takes above and window (5m by default), and nothing else', () => {
    expect(parseAlertRules({ rules: [{ name: 'ops', kind: 'operator_auth_failures', above: 10 }] })).toEqual([
      {
        name: 'ops',
        kind: 'operator_auth_failures',
        severity: 'warning',
        forMs: 0,
        recoverForMs: 0,
        summary: null,
        above: 10,
        windowMs: 300_000,
      },
    ]);
    expect(() =>
      parseAlertRules({ rules: [{ name: 'ops', kind: 'operator_auth_failures', above: 1, filter: 'x=1' }] }),
    ).toThrow(/rules\[0\]: unknown key "filter"/);
    expect(() => parseAlertRules({ rules: [{ name: 'ops', kind: 'operator_auth_failures' }] })).toThrow(
      /rules\[0\]\.above: expected a number/,
    );
  });
});
