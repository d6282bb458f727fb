import { describe, expect, it } from 'vitest';
import { EgressLimit } from './egress-limit.js';

describe('EgressLimit', () => {
  it('lets through no more than the rate over any stretch, plus one burst and one chunk (fake clock)', async () => {
    let now = 0;
    const limit = new EgressLimit(
      1_000_000,
      () => now,
      async (ms) => {
        now += ms;
      },
    );
    const chunk = 64 * 1024;
    const at: Array<{ t: number; sent: number }> = [];
    await Promise.all(
      Array.from({ length: 60 }, () => limit.take(chunk).then(() => at.push({ t: now, sent: limit.sent }))),
    );
    expect(limit.sent).toBe(60 * chunk);
    for (const { t, sent } of at)
      expect(sent).toBeLessThanOrEqual((1_000_000 * t) / 1000 + limit.burst + chunk);
    // And it does not hold bytes back needlessly: the whole took about what the rate says.
    expect(now).toBeLessThanOrEqual(((60 * chunk - limit.burst) / 1_000_000) * 1000 + 100);
  });

  it('refuses a cap of 0', () => {
    expect(() => new EgressLimit(0)).toThrow(RangeError);
  });
});
