import { describe, expect, it } from 'vitest';
import {
  crashRateVerdict,
  EMPTY_HEALTH_SAMPLE,
  type HealthPolicy,
  healthAdjustedCounts,
  healthReasons,
} from './health-gate.js';
import { gateDecision } from './phases.js';
import { parseRolloutSpec } from './spec.js';
import { toRolloutDocument } from './spec-document.js';

const policy: HealthPolicy = {
  soakMs: 7_200_000,
  darkAfterMs: null,
  maxReboots: null,
  maxAppCrashes: null,
  crashRateMargin: 5,
};

describe('health gate', () => {
  it('unhealthy devices count as failures, soaking and unconfirmed ones as not finished', () => {
    const sample = {
      ...EMPTY_HEALTH_SAMPLE,
      succeeded: 10,
      dark: 1,
      fellBack: 1,
      soaking: 3,
      unconfirmed: 1,
    };
    expect(healthAdjustedCounts({ succeeded: 10, failed: 1 }, sample)).toEqual({
      succeeded: 4,
      failed: 3,
      verifying: 4,
    });
    expect(healthReasons(sample)).toEqual([
      '1 went dark after updating',
      '1 fell back to another version after updating',
    ]);
  });

  it('one dark canary of twenty halts a 95 % gate before its soak is over', () => {
    const counts = healthAdjustedCounts(
      { succeeded: 20 },
      { ...EMPTY_HEALTH_SAMPLE, succeeded: 20, dark: 2, soaking: 18 },
    );
    const d = gateDecision({
      phase: { waitMs: 0, successRate: 95, approval: 'auto', quorum: 50 },
      startedAt: 0,
      now: 1,
      counts,
    });
    expect(d.kind).toBe('halt');
  });

  it('the crash rate is compared with the control group, within the margin', () => {
    const s = { ...EMPTY_HEALTH_SAMPLE, updatedConfirmed: 20, control: 100 };
    expect(crashRateVerdict(policy, { ...s, updatedCrashed: 3, controlCrashed: 10 })).toBeNull(); // 15 ≤ 10 + 5
    expect(crashRateVerdict(policy, { ...s, updatedCrashed: 4, controlCrashed: 10 })).toBe(
      "crash rate 20% of updated devices is above the control group's 10% by more than 5 points",
    );
    expect(crashRateVerdict(policy, { ...s, updatedCrashed: 4, control: 0 })).toBeNull(); // no one to compare with
  });

  it('a phase health gate reads back from the stored document unchanged', () => {
    const spec = parseRolloutSpec({
      name: 'r',
      release: 'fw@2.0.0',
      filter: '',
      strategy: 'progressive',
      phases: [
        { percentage: 5, health: { soak: '3h', dark_after: '30m', max_reboots: 2, crash_rate_margin: 1 } },
        { percentage: 100 },
      ],
    });
    expect(spec.phases[0]!.health).toEqual({
      soakMs: 10_800_000,
      darkAfterMs: 1_800_000,
      maxReboots: 2,
      maxAppCrashes: null,
      crashRateMargin: 1,
    });
    expect(spec.phases[1]!.health).toBeUndefined();
    expect(parseRolloutSpec(toRolloutDocument(spec))).toEqual(spec);
    expect(() =>
      parseRolloutSpec({
        ...toRolloutDocument(spec),
        phases: [{ percentage: 100, health: { dark_after: '1h' } }],
      }),
    ).toThrow(/phases\[0\]\.health/);
  });
});
