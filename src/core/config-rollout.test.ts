/**
 * The pure part of a configuration rollout: the plan checked before anything is written, the devices each phase
 * reaches, and one step's decision (release, wait for reports and the soak, the next phase, the end, a halt that
 * names the counts).
 */
import { describe, expect, it } from 'vitest';
import {
  type ConfigRolloutPlan,
  checkConfigRolloutPlan,
  configRolloutStep,
  parsePhaseList,
  phaseTargets,
} from './config-rollout.js';

const plan = (over: Partial<ConfigRolloutPlan> = {}): ConfigRolloutPlan => ({
  phases: parsePhaseList('1,10%,50%,100%'),
  soakMs: 600_000,
  maxFailureRate: 5,
  promote: false,
  ...over,
});
const T0 = 1_000_000;

describe('the plan', () => {
  it('reads a bare number as devices and a percentage as a share', () => {
    expect(parsePhaseList('1, 10%,100%')).toEqual([{ devices: 1 }, { percentage: 10 }, { percentage: 100 }]);
    expect(checkConfigRolloutPlan({})).toEqual({
      phases: [{ devices: 1 }, { percentage: 10 }, { percentage: 50 }, { percentage: 100 }],
      soakMs: 600_000,
      maxFailureRate: 5,
      promote: false,
    });
    expect(
      checkConfigRolloutPlan({ phases: '100%', soak: '0s', max_failure_rate: '0%', promote: true }),
    ).toEqual({
      phases: [{ percentage: 100 }],
      soakMs: 0,
      maxFailureRate: 0,
      promote: true,
    });
  });

  it.each([
    ['', 'is not a number'],
    ['10%,50%', 'the last phase must be 100%'],
    ['50%,10%,100%', 'must be more than the phase before'],
    ['0%,100%', 'must be above 0'],
    ['1.5,100%', 'a whole number'],
    ['2,1,100%', 'must be more than the phase before'],
    ['x,100%', 'is not a number'],
    ['150%', 'at most 100'],
  ])('refuses phases "%s"', (text, message) => {
    expect(() => parsePhaseList(text)).toThrow(message);
  });

  it('refuses a bad soak or failure rate, naming the field', () => {
    expect(() => checkConfigRolloutPlan({ soak: 'soon' })).toThrow('soak: "soon" is not a duration');
    expect(() => checkConfigRolloutPlan({ max_failure_rate: 101 })).toThrow('max_failure_rate');
    expect(() => checkConfigRolloutPlan({ max_failure_rate: 'lots' })).toThrow('max_failure_rate');
  });
});

describe('phase targets', () => {
  it('rounds a share up, caps a count at the devices there are, and ends with every device', () => {
    expect(phaseTargets(40, plan().phases)).toEqual([1, 4, 20, 40]);
    expect(phaseTargets(3, plan().phases)).toEqual([1, 1, 2, 3]);
    expect(phaseTargets(0, plan().phases)).toEqual([0, 0, 0, 0]);
    expect(phaseTargets(2, parsePhaseList('5,100%'))).toEqual([2, 2]);
  });
});

describe('a step', () => {
  const step = (over: Partial<Parameters<typeof configRolloutStep>[0]>) =>
    configRolloutStep({
      plan: plan(),
      phase: 0,
      phaseStartedAt: T0,
      now: T0,
      reach: 40,
      released: 1,
      counts: { released: 1, applied: 0, failed: 0 },
      ...over,
    });

  it("releases the phase's share first", () => {
    expect(step({ released: 0, counts: { released: 0, applied: 0, failed: 0 } })).toEqual({
      kind: 'release',
      count: 1,
    });
    expect(step({ phase: 2, released: 4 })).toEqual({ kind: 'release', count: 16 });
  });

  it('waits for the soak, then for every device of the phase to report', () => {
    expect(step({ counts: { released: 1, applied: 1, failed: 0 } })).toMatchObject({
      kind: 'wait',
      reason: expect.stringContaining('soaking until'),
    });
    expect(step({ now: T0 + 600_000 })).toMatchObject({
      kind: 'wait',
      reason: 'phase 1 of 4 (1): 1 of 1 devices have not reported yet',
    });
    expect(step({ now: T0 + 600_000, counts: { released: 1, applied: 1, failed: 0 } })).toEqual({
      kind: 'next',
    });
    expect(
      step({ phase: 3, released: 40, now: T0 + 600_000, counts: { released: 20, applied: 20, failed: 0 } }),
    ).toEqual({ kind: 'complete' });
  });

  it('halts as soon as the phase can no longer stay under the limit, naming the counts', () => {
    expect(step({ counts: { released: 1, applied: 0, failed: 1 } })).toEqual({
      kind: 'halt',
      reason: 'phase 1 of 4 (1): 1 of 1 devices failed (0 applied, 0 not reported yet), over the 5% limit',
    });
    const phase3 = { phase: 2, released: 20, now: T0 + 600_000 };
    // 1 of 20 is 5%: at the limit, not over it.
    expect(step({ ...phase3, counts: { released: 20, applied: 19, failed: 1 } })).toEqual({ kind: 'next' });
    expect(step({ ...phase3, counts: { released: 20, applied: 18, failed: 2 } })).toMatchObject({
      kind: 'halt',
    });
    expect(
      step({
        ...phase3,
        plan: plan({ maxFailureRate: 100 }),
        counts: { released: 20, applied: 0, failed: 20 },
      }),
    ).toEqual({ kind: 'next' });
  });

  it('passes a phase with no device of its own at once', () => {
    expect(step({ phase: 1, reach: 3, released: 1, counts: { released: 0, applied: 0, failed: 0 } })).toEqual(
      {
        kind: 'next',
      },
    );
  });
});
