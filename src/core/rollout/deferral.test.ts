import { describe, expect, it } from 'vitest';
import { defer, deferralSpent } from './deferral.js';

const H = 3_600_000;

describe('deferral budget', () => {
  it('counts deferrals up to max_count, then refuses with 409 CONFLICT', () => {
    const policy = { maxCount: 2, maxTotalMs: null };
    const first = defer(policy, null, H, 0);
    expect(first).toEqual({ count: 1, firstAt: 0, deferredUntil: H });
    const second = defer(policy, first, 5 * H, H);
    expect(second).toEqual({ count: 2, firstAt: 0, deferredUntil: 6 * H });
    expect(deferralSpent(policy, second, H)).toBe(true);
    expect(() => defer(policy, second, H, 6 * H)).toThrow(
      expect.objectContaining({
        code: 'CONFLICT',
        message: expect.stringMatching(/budget spent \(2 deferrals/),
      }),
    );
  });

  it('never reaches past max_total after the first deferral, and is spent from then on', () => {
    const policy = { maxCount: null, maxTotalMs: 3 * H };
    const first = defer(policy, null, 2 * H, 10 * H);
    const second = defer(policy, first, 24 * H, 12 * H);
    expect(second).toEqual({ count: 2, firstAt: 10 * H, deferredUntil: 13 * H });
    expect(deferralSpent(policy, second, 13 * H - 1)).toBe(false);
    expect(deferralSpent(policy, second, 13 * H)).toBe(true);
  });

  it('a rollout without a budget has none to spend', () => {
    expect(deferralSpent(null, null, 0)).toBe(true);
    expect(() => defer(null, null, H, 0)).toThrow(/no deferral budget/);
  });
});
