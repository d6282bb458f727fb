import { describe, expect, it } from 'vitest';
import { Backoff, backoffMs, heartbeatDelayMs, seededRandom } from './schedule.js';

describe('schedule', () => {
  it('jitters heartbeats within ±10 %, reproducibly for a seed', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const delays = Array.from({ length: 200 }, () => heartbeatDelayMs(300, a));
    expect(delays).toEqual(Array.from({ length: 200 }, () => heartbeatDelayMs(300, b)));
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(270_000);
    expect(Math.max(...delays)).toBeLessThanOrEqual(330_000);
    expect(new Set(delays).size).toBeGreaterThan(100); // actually spread
  });

  it('backs off exponentially up to a cap', () => {
    const mid = () => 0.5;
    expect([1, 2, 3, 4].map((n) => backoffMs(n, mid))).toEqual([1000, 2000, 4000, 8000]);
    expect(backoffMs(30, mid)).toBe(300_000);
    const retry = new Backoff(mid);
    expect(retry.ready(0)).toBe(true);
    expect(retry.failed(0)).toBe(1000);
    expect(retry.ready(999)).toBe(false);
    expect(retry.waitMs(400)).toBe(600);
    retry.succeeded();
    expect(retry.ready(0)).toBe(true);
  });
});
