import { describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.js';
import { RenewalSchedule, renewalDueAt } from './renewal.js';
import { seededRandom } from './schedule.js';

const DAY = 86_400_000;
const validity = { notBefore: 1_000 * DAY, notAfter: 1_090 * DAY };

describe('renewal schedule', () => {
  it('a 90-day certificate is due for renewal after 60 days', () => {
    expect(renewalDueAt(validity)).toBe(1_060 * DAY);
    expect(renewalDueAt(validity, 0.5)).toBe(1_045 * DAY);
  });

  it('counts from receipt when a back-dated certificate arrives after its notBefore', () => {
    const minute = 60_000;
    // Issued at t = 1000 min, back-dated 5 min, valid 30 s: due 20 s after receipt, not at once.
    const backDated = {
      notBefore: 995 * minute,
      notAfter: 1000 * minute + 30_000,
      receivedAt: 1000 * minute,
    };
    expect(renewalDueAt(backDated)).toBe(1000 * minute + 20_000);
    // Received before notBefore (a device clock that lags): notBefore counts.
    expect(renewalDueAt({ ...validity, receivedAt: 999 * DAY })).toBe(1_060 * DAY);
  });

  it('is not due before two thirds, is due after, and says how long to wait', () => {
    const clock = new ManualClock(1_000 * DAY);
    const schedule = new RenewalSchedule(validity, 2 / 3, seededRandom(1));
    expect(schedule.due(clock.now())).toBe(false);
    expect(schedule.waitMs(clock.now())).toBe(60 * DAY);
    clock.set(1_060 * DAY - 1);
    expect(schedule.due(clock.now())).toBe(false);
    expect(schedule.waitMs(clock.now())).toBe(1);
    clock.advance(1);
    expect(schedule.due(clock.now())).toBe(true);
    expect(schedule.waitMs(clock.now())).toBe(0);
  });

  it('after a failure it waits the backoff, then tries again; a renewal moves the due time to the new certificate', () => {
    const clock = new ManualClock(1_061 * DAY);
    const schedule = new RenewalSchedule(validity, 2 / 3, seededRandom(1));
    const wait = schedule.failed(clock.now());
    expect(wait).toBeGreaterThan(0);
    expect(schedule.due(clock.now())).toBe(false);
    expect(schedule.waitMs(clock.now())).toBe(wait);
    clock.advance(wait);
    expect(schedule.due(clock.now())).toBe(true);
    schedule.renewed({ notBefore: clock.now(), notAfter: clock.now() + 90 * DAY });
    expect(schedule.due(clock.now())).toBe(false);
    expect(schedule.waitMs(clock.now())).toBe(60 * DAY);
  });

  it('repeated failures never wait more than an hour between attempts', () => {
    const clock = new ManualClock(1_061 * DAY);
    const schedule = new RenewalSchedule(validity, 2 / 3, seededRandom(7));
    let longest = 0;
    for (let i = 0; i < 30; i++) longest = Math.max(longest, schedule.failed(clock.now()));
    expect(longest).toBeLessThanOrEqual(3_600_000 * 1.1);
    expect(longest).toBeGreaterThan(3_000_000);
  });
});
