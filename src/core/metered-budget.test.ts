import { describe, expect, it } from 'vitest';
import { meteredBudgetFor, meteredHold } from './bandwidth.js';
import { fitsBudget, formatMeteredBudget, parseMeteredBudget } from './metered-budget.js';

const DAY = 86_400_000;

describe('metered budget', () => {
  it('reads a size and a period, and writes them back the same way', () => {
    expect(parseMeteredBudget('50MB/30d', 'f')).toEqual({ bytes: 50_000_000, periodMs: 30 * DAY });
    expect(parseMeteredBudget(' 2GiB / 1w ', 'f')).toEqual({ bytes: 2 * 1_073_741_824, periodMs: 7 * DAY });
    for (const text of ['50MB/30d', '512KiB/12h', '1kB/1h', '5GB/366d'])
      expect(formatMeteredBudget(parseMeteredBudget(text, 'f'))).toBe(text);
  });

  it('a download that fills the budget exactly fits; one byte more does not', () => {
    const budget = { bytes: 1_000, periodMs: DAY };
    expect(fitsBudget(budget, 400, 600)).toBe(true);
    expect(fitsBudget(budget, 401, 600)).toBe(false);
  });

  it('holds only a metered device past its budget, and a size ceiling still applies under one', () => {
    const use = { budget: { bytes: 1_000_000, periodMs: DAY }, used: 900_000 };
    expect(meteredHold(false, 200_000, false, use)).toBeNull();
    expect(meteredHold(false, 100_000, true, use)).toBeNull();
    expect(meteredHold(false, 200_000, true, use)?.reason).toBe(
      'metered connection: the release is 200kB and 900kB of the 1MB/1d metered budget is used',
    );
    expect(meteredHold(50_000, 100_000, true, { ...use, used: 0 })?.reason).toContain('allows up to 50kB');
    expect(meteredHold(true, 200_000, true, use)).toBeNull();
  });

  it("a device's valid tag wins over the rollout's budget; a bad one leaves the rollout's in force", () => {
    const rollout = { bytes: 10_000_000, periodMs: 30 * DAY };
    expect(meteredBudgetFor(rollout, {})).toBe(rollout);
    expect(meteredBudgetFor(null, { metered_budget: '1MB/7d' })).toEqual({
      bytes: 1_000_000,
      periodMs: 7 * DAY,
    });
    expect(meteredBudgetFor(rollout, { metered_budget: 'plenty' })).toBe(rollout);
  });
});
