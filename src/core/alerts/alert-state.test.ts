import { describe, expect, it } from 'vitest';
import { parseAlertRules } from './alert-rule.js';
import { type AlertState, stepAlert } from './alert-state.js';

const timing = { forMs: 10_000, recoverForMs: 5_000 };

function run(steps: Array<[holds: boolean, at: number]>) {
  let state: AlertState | null = null;
  const transitions: string[] = [];
  for (const [holds, at] of steps) {
    const step = stepAlert(state, holds, at, timing);
    state = step.state;
    if (step.transition) transitions.push(`${step.transition}@${at}`);
  }
  return { state, transitions };
}

describe('stepAlert', () => {
  it('fires once the condition has held for `for`, and not before', () => {
    expect(
      run([
        [true, 0],
        [true, 9_999],
      ]).transitions,
    ).toEqual([]);
    expect(
      run([
        [true, 0],
        [true, 9_999],
        [true, 10_000],
        [true, 20_000],
      ]).transitions,
    ).toEqual(['firing@10000']);
  });

  it('drops a pending alert whose condition clears: nothing fired, nothing resolves', () => {
    const { state, transitions } = run([
      [true, 0],
      [false, 5_000],
      [true, 6_000],
      [true, 15_000],
    ]);
    expect(transitions).toEqual([]);
    expect(state).toEqual({ phase: 'pending', since: 6_000, clearSince: null });
  });

  it('resolves only once the condition has been clear for `recover_for`; a relapse keeps it firing', () => {
    const { transitions } = run([
      [true, 0],
      [true, 10_000],
      [false, 11_000],
      [true, 12_000],
      [false, 13_000],
      [false, 17_999],
      [false, 18_000],
    ]);
    expect(transitions).toEqual(['firing@10000', 'resolved@18000']);
  });

  it('fires at once with `for: 0s`', () => {
    expect(stepAlert(null, true, 5, { forMs: 0, recoverForMs: 0 }).transition).toBe('firing');
  });
});

describe('parseAlertRules', () => {
  it('reads every kind with its defaults', () => {
    const rules = parseAlertRules({
      rules: [
        {
          name: 'east-offline',
          kind: 'offline_share',
          filter: 'tag.region = east',
          above_pct: 20,
          for: '10m',
        },
        { name: 'silent', kind: 'device_silent', silent_for: '2h', severity: 'critical' },
        { name: 'halted', kind: 'rollout_halted' },
        { name: 'failing', kind: 'phase_failure_rate', above_pct: 10, min_finished: 5 },
        { name: 'auth', kind: 'auth_failures', above: 20 },
      ],
    });
    expect(rules.map((r) => [r.name, r.kind, r.severity, r.forMs])).toEqual([
      ['east-offline', 'offline_share', 'warning', 600_000],
      ['silent', 'device_silent', 'critical', 0],
      ['halted', 'rollout_halted', 'warning', 0],
      ['failing', 'phase_failure_rate', 'warning', 0],
      ['auth', 'auth_failures', 'warning', 0],
    ]);
    expect(rules[4]).toMatchObject({ windowMs: 300_000, above: 20 });
  });

  it('refuses a bad rule naming its field', () => {
    expect(() => parseAlertRules({ rules: [{ name: 'x', kind: 'offline_share' }] })).toThrow(
      /rules\[0\]\.above_pct/,
    );
    expect(() => parseAlertRules({ rules: [{ name: 'x', kind: 'nope' }] })).toThrow(/rules\[0\]\.kind/);
    expect(() =>
      parseAlertRules({
        rules: [{ name: 'x', kind: 'offline_share', above_pct: 5, filter: 'colour = red' }],
      }),
    ).toThrow(/rules\[0\]\.filter/);
    expect(() => parseAlertRules({ rules: [{ name: 'x', kind: 'rollout_halted', for: 'soon' }] })).toThrow(
      /rules\[0\]\.for/,
    );
    expect(() =>
      parseAlertRules({
        rules: [
          { name: 'x', kind: 'rollout_halted' },
          { name: 'x', kind: 'rollout_halted' },
        ],
      }),
    ).toThrow(/names two rules/);
    expect(() => parseAlertRules({ rules: [{ name: 'x', kind: 'rollout_halted', extra: 1 }] })).toThrow(
      /extra/,
    );
  });
});
