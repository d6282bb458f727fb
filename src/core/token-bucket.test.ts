import { describe, expect, it } from 'vitest';
import { TokenBucket, takeFrom } from './token-bucket.js';

/** Virtual time: a wait moves the clock at once. */
function virtualTime() {
  const time = {
    at: 0,
    now: () => time.at,
    wait: async (ms: number) => {
      time.at += ms;
    },
  };
  return time;
}

describe('TokenBucket', () => {
  it('lets a full burst through at once, then asks to wait what the rate says', () => {
    const bucket = new TokenBucket(100_000, 25_000, 0);
    expect(bucket.tryTake(25_000, 0)).toBe(0);
    // Empty now: 10 000 more bytes need 100 ms of refill before the bucket is out of debt (it is at 0).
    expect(bucket.tryTake(10_000, 0)).toBe(0);
    expect(bucket.tryTake(10_000, 0)).toBe(100);
    expect(bucket.tryTake(10_000, 50)).toBe(50);
    expect(bucket.tryTake(10_000, 100)).toBe(0);
    expect(bucket.taken).toBe(45_000);
  });

  it('never holds more than its burst after a quiet spell', () => {
    const bucket = new TokenBucket(1_000, 250, 0);
    expect(bucket.tryTake(250, 3_600_000)).toBe(0);
    expect(bucket.tryTake(1, 3_600_000)).toBe(0);
    expect(bucket.tryTake(1, 3_600_000)).toBeGreaterThan(0);
  });

  it('a clock stepping back refills nothing', () => {
    const bucket = new TokenBucket(1_000, 100, 10_000);
    expect(bucket.tryTake(200, 10_000)).toBe(0);
    expect(bucket.tryTake(1, 0)).toBe(100);
  });

  it('paces 300 kB at 100 kB/s: never ahead of the rate plus a burst and a chunk, and no slower than it', async () => {
    const time = virtualTime();
    const bucket = new TokenBucket(100_000, undefined, time.now());
    const chunk = 16_384;
    let sent = 0;
    while (sent < 300_000) {
      const n = Math.min(chunk, 300_000 - sent);
      await takeFrom(bucket, n, time);
      sent += n;
      expect(sent).toBeLessThanOrEqual((100_000 * time.at) / 1000 + bucket.burst + chunk);
    }
    expect(bucket.taken).toBe(300_000);
    expect(time.at).toBeGreaterThanOrEqual(TokenBucket.minimumMs(300_000, 100_000, bucket.burst, chunk));
    expect(time.at).toBeLessThanOrEqual(((300_000 - bucket.burst) / 100_000) * 1000 + 10);
  });

  it('refuses a rate of 0 and a burst below one byte', () => {
    expect(() => new TokenBucket(0)).toThrow(RangeError);
    expect(() => new TokenBucket(Number.POSITIVE_INFINITY)).toThrow(RangeError);
    expect(() => new TokenBucket(1_000, 0)).toThrow(RangeError);
  });
});
