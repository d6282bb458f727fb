import { describe, expect, it } from 'vitest';
import { parseRolloutSpec } from '../core/rollout/spec.js';
import { quickSpec } from './quick-spec.js';

describe('quickSpec', () => {
  it('5% then +25% every hour at 95%: phases 5, 30, 55, 80, 100, the last without a soak', () => {
    const spec = quickSpec({
      release: 'fw@2.0.0',
      filter: 'tag.region = eu',
      strategy: 'progressive',
      initial: '5%',
      increment: '25%',
      interval: '1h',
      successRate: '95',
    });
    const parsed = parseRolloutSpec(spec);
    expect(parsed.phases.map((p) => [p.percentage, p.waitMs, p.successRate])).toEqual([
      [5, 3_600_000, 95],
      [30, 3_600_000, 95],
      [55, 3_600_000, 95],
      [80, 3_600_000, 95],
      [100, 0, 95],
    ]);
    expect(parsed).toMatchObject({ name: 'fw@2.0.0 progressive', filter: 'tag.region = eu' });
  });

  it('refuses a phase flag on another strategy and a progressive rollout without --initial, naming the flag', () => {
    expect(() => quickSpec({ release: 'fw@2.0.0', interval: '1h' })).toThrow(
      '--interval: only --strategy progressive takes it',
    );
    expect(() => quickSpec({ release: 'fw@2.0.0', strategy: 'progressive' })).toThrow('--initial: required');
    expect(() => quickSpec({ release: 'fw@2.0.0', strategy: 'progressive', initial: '0%' })).toThrow(
      '--initial: "0%" must be a percentage above 0 and at most 100',
    );
    expect(() => quickSpec({ strategy: 'immediate' })).toThrow('--release: required');
  });

  it('an increment too small for 20 phases is refused by the spec parser', () => {
    const spec = quickSpec({ release: 'fw@2.0.0', strategy: 'progressive', initial: '1', increment: '1' });
    expect(() => parseRolloutSpec(spec)).toThrow('phases: must have at most 20 items (found 100)');
  });
});
