import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  afterFailure,
  allocateSlots,
  currentRate,
  isTimedOut,
  type RatePolicy,
  type RetryPolicy,
  retryDelay,
  type SlotRequest,
} from './dispatch.js';

const now = Date.parse('2024-10-21T02:00:15Z'); // 15 s into a clock minute
const devices = (n: number, tag?: (i: number) => string) =>
  Array.from({ length: n }, (_, i) => ({ id: `d${i}`, tagValue: tag?.(i) ?? null }));
const steady: RatePolicy = { perMinute: 10, growthFactor: 1, afterSuccesses: null, maxPerMinute: null };

describe('allocateSlots', () => {
  it('never lets more than max_concurrent devices download at once', () => {
    const d = allocateSlots({ candidates: devices(10), inProgress: 97, maxConcurrent: 100, now });
    expect(d.granted).toEqual(['d0', 'd1', 'd2']);
    expect(d.deferred.map((x) => x.reason)).toEqual(Array(7).fill('max_concurrent'));
  });
  it('spreads the hints of devices turned away by full slots by their place in the queue', () => {
    const d = allocateSlots({
      candidates: devices(5),
      inProgress: 2,
      maxConcurrent: 2,
      now,
      busyRetrySec: 30,
    });
    expect(d.deferred.map((x) => x.retryAfterSec)).toEqual([30, 30, 60, 60, 90]);
  });
  it('caps hints so a device never sleeps through freed capacity for long', () => {
    const d = allocateSlots({ candidates: devices(1000), inProgress: 1, maxConcurrent: 1, now });
    expect(Math.max(...d.deferred.map((x) => x.retryAfterSec))).toBe(900);
  });
  it('limits each tag value separately (50 per region) without blocking other regions', () => {
    const d = allocateSlots({
      candidates: devices(4, (i) => (i < 2 ? 'west' : 'east')),
      inProgress: 60,
      inProgressPer: { west: 50, east: 10 },
      maxConcurrent: 100,
      maxConcurrentPer: { limit: 50 },
      now,
    });
    expect(d.granted).toEqual(['d2', 'd3']);
    expect(d.deferred).toEqual([
      { id: 'd0', reason: 'max_concurrent_per', retryAfterSec: 60 },
      { id: 'd1', reason: 'max_concurrent_per', retryAfterSec: 60 },
    ]);
  });
  it('puts devices without the tag in one shared bucket', () => {
    const d = allocateSlots({
      candidates: devices(3),
      inProgress: 0,
      maxConcurrent: 100,
      maxConcurrentPer: { limit: 2 },
      now,
    });
    expect(d.granted).toEqual(['d0', 'd1']);
  });
  it('offers at most `rate` devices per clock minute and tells the rest when the next minute starts', () => {
    const d = allocateSlots({
      candidates: devices(25),
      inProgress: 0,
      maxConcurrent: 100,
      rate: steady,
      offeredThisMinute: 4,
      now,
    });
    expect(d.granted).toHaveLength(6);
    // 45 s to the next minute; 10 more fit in each following minute.
    expect(d.deferred.map((x) => x.retryAfterSec)).toEqual([...Array(10).fill(45), ...Array(9).fill(105)]);
  });
  it('grows the rate by the factor after each N successes, up to the ceiling', () => {
    const growing: RatePolicy = { perMinute: 10, growthFactor: 2, afterSuccesses: 100, maxPerMinute: 50 };
    expect(currentRate(growing, 99)).toBe(10);
    expect(currentRate(growing, 100)).toBe(20);
    expect(currentRate(growing, 250)).toBe(40);
    expect(currentRate(growing, 10_000)).toBe(50);
  });
  it('property: grants never exceed any limit, and every candidate is either granted or deferred', () => {
    const req = fc.record({
      n: fc.nat(60),
      inProgress: fc.nat(30),
      maxConcurrent: fc.integer({ min: 1, max: 40 }),
      perLimit: fc.integer({ min: 1, max: 10 }),
      perMinute: fc.integer({ min: 1, max: 20 }),
      offered: fc.nat(20),
    });
    fc.assert(
      fc.property(req, (r) => {
        const tag = (i: number) => ['a', 'b', 'c'][i % 3]!;
        const input: SlotRequest = {
          candidates: devices(r.n, tag),
          inProgress: r.inProgress,
          inProgressPer: { a: Math.min(r.inProgress, 3) },
          maxConcurrent: r.maxConcurrent,
          maxConcurrentPer: { limit: r.perLimit },
          rate: { ...steady, perMinute: r.perMinute },
          offeredThisMinute: r.offered,
          now,
        };
        const d = allocateSlots(input);
        expect(d.granted.length + d.deferred.length).toBe(r.n);
        expect(r.inProgress + d.granted.length).toBeLessThanOrEqual(Math.max(r.inProgress, r.maxConcurrent));
        expect(r.offered + d.granted.length).toBeLessThanOrEqual(Math.max(r.offered, r.perMinute));
        for (const t of ['a', 'b', 'c']) {
          const before = t === 'a' ? Math.min(r.inProgress, 3) : 0;
          const got = d.granted.filter((id) => tag(Number(id.slice(1))) === t).length;
          expect(before + got).toBeLessThanOrEqual(Math.max(before, r.perLimit));
        }
        for (const x of d.deferred) expect(x.retryAfterSec).toBeGreaterThanOrEqual(1);
      }),
    );
  });
});

describe('retries and timeouts', () => {
  const policy: RetryPolicy = { attempts: 3, backoffMs: 60_000, factor: 2, maxBackoffMs: 3_600_000 };
  it('backs off exponentially from 1 minute: 1m, 2m, 4m …, capped at 1h', () => {
    expect([1, 2, 3].map((a) => retryDelay(a, policy))).toEqual([60_000, 120_000, 240_000]);
    expect(retryDelay(20, policy)).toBe(3_600_000);
  });
  it('retries until the attempts are spent, then gives up', () => {
    expect(afterFailure(1, now, policy)).toEqual({ kind: 'retry', at: now + 60_000 });
    expect(afterFailure(2, now, policy)).toEqual({ kind: 'retry', at: now + 120_000 });
    expect(afterFailure(3, now, policy)).toEqual({ kind: 'give_up' });
  });
  it('times out an update in progress once the timeout has elapsed', () => {
    expect(isTimedOut(now, now + 7_199_999, 7_200_000)).toBe(false);
    expect(isTimedOut(now, now + 7_200_000, 7_200_000)).toBe(true);
  });
});
