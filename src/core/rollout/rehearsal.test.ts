import { describe, expect, it } from 'vitest';
import type { DevicePresence } from './presence.js';
import { type RehearsalInput, rehearse, rehearseOnce, smallestMaxConcurrent } from './rehearsal.js';

const NOW = Date.parse('2026-03-02T00:00:00Z');
const MIN = 60_000;
const always: DevicePresence = {
  zone: 'UTC',
  online: true,
  offlineFor: 0,
  seenToday: true,
  hourly: Array(24).fill(1),
  leaves: Array(24).fill(0),
  lingers: Array(24).fill(0),
  activity: Array(7).fill(1),
  awayToday: 0,
  duration: Array(13).fill(1),
};
const input = (maxConcurrent: number): RehearsalInput => ({
  devices: Array.from({ length: 100 }, () => ({ phase: 0, presence: always })),
  phases: [],
  strategy: 'immediate',
  maxConcurrent,
  updateTimes: [10 * MIN],
  failureRate: 0,
  now: NOW,
});

describe('rehearsal', () => {
  it('always-online devices at 10 at once, 10 minutes each: slots pass on the instant an update ends', () => {
    const run = rehearseOnce(input(10), 1);
    expect(run.unfinished).toBe(0);
    expect(run.finishAt).toBe(NOW + 100 * MIN);
    expect(rehearse(input(10), 3).p90At).toBe(NOW + 100 * MIN);
  });

  it('a deadline of 30 minutes needs 40 at once among the candidates (25 would take 40 minutes)', () => {
    expect(smallestMaxConcurrent(input(10), NOW + 30 * MIN, 2)).toEqual({
      maxConcurrent: 40,
      p90At: NOW + 30 * MIN,
    });
  });

  it('every attempt failing: all fail, after their retries (each a backoff and another update later)', () => {
    const once = rehearseOnce({ ...input(10), failureRate: 1 }, 1);
    expect(once.phases[0]).toMatchObject({ failed: 100, succeeded: 0 });
    expect(once.unfinished).toBe(0);
    expect(once.finishAt).toBe(NOW + 100 * MIN);
    const retry = { attempts: 2, backoffMs: 5 * MIN, factor: 1, maxBackoffMs: 5 * MIN };
    const twice = rehearseOnce({ ...input(10), failureRate: 1, retry }, 1);
    expect(twice.phases[0]!.failed).toBe(100);
    expect(twice.finishAt!).toBeGreaterThan(NOW + 100 * MIN);
  });
});
