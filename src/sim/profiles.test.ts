import { describe, expect, it } from 'vitest';
import { localToUtc } from './local-time.js';
import { Connectivity, heartbeatMs, onlineShare, type ProfileSpec } from './profiles.js';

const WEEK = 7 * 86_400_000;
const START = Date.parse('2026-03-02T00:00:00Z');
const HOUR = 3_600_000;

/** Mean online share over `n` devices for a week, sampled every 20 minutes. */
function share(profile: ProfileSpec, n = 30, zone = 'America/Chicago'): number {
  let sum = 0;
  for (let i = 0; i < n; i++)
    sum += onlineShare(
      new Connectivity(profile, { seed: 0, index: i, zone }),
      START,
      START + WEEK,
      10 * 60_000,
    );
  return sum / n;
}

describe('connectivity profiles', () => {
  it('online shares of seed 000', () => {
    expect(share({ kind: 'vehicle' })).toBeGreaterThanOrEqual(0.5);
    expect(share({ kind: 'vehicle' })).toBeLessThanOrEqual(0.7);
    expect(share({ kind: 'signage' })).toBeGreaterThanOrEqual(0.95);
    expect(share({ kind: 'medical' })).toBeGreaterThanOrEqual(0.8);
    expect(share({ kind: 'always' })).toBe(1);
  });

  it('iot wakes every 15–60 min: 20–40 % count as online (10 min after a heartbeat)', () => {
    let online = 0;
    let samples = 0;
    for (let i = 0; i < 60; i++) {
      const c = new Connectivity({ kind: 'iot' }, { seed: 0, index: i, zone: 'UTC' });
      const hb = heartbeatMs({ kind: 'iot' }, { seed: 0, index: i, zone: 'UTC' });
      expect(hb).toBeGreaterThanOrEqual(15 * 60_000);
      expect(hb).toBeLessThanOrEqual(60 * 60_000);
      for (let t = START; t < START + 86_400_000; t += 5 * 60_000, samples++) {
        if (c.isOnline(t) || c.isOnline(t - 5 * 60_000) || c.nextOnline(t - 10 * 60_000) <= t) online++;
      }
    }
    expect(online / samples).toBeGreaterThan(0.2);
    expect(online / samples).toBeLessThan(0.4);
  });

  it('pos: 90 %+ online in business hours, closed at night, in the device’s own zone', () => {
    for (const zone of ['America/New_York', 'America/Los_Angeles']) {
      let open = 0;
      let hours = 0;
      let night = 0;
      for (let i = 0; i < 40; i++) {
        const c = new Connectivity({ kind: 'pos' }, { seed: 0, index: i, zone });
        for (let day = 0; day < 5; day++) {
          // Monday 2026-03-02 is local day 20514.
          const d = 20514 + day;
          for (let m = 9 * 60 + 30; m < 19 * 60; m += 30, hours++)
            if (c.isOnline(localToUtc(zone, d, m))) open++;
          if (c.isOnline(localToUtc(zone, d, 3 * 60))) night++;
        }
      }
      expect(open / hours).toBeGreaterThanOrEqual(0.9);
      expect(night).toBe(0);
    }
  });

  it('vehicles are parked overnight, local time', () => {
    const c = new Connectivity({ kind: 'vehicle' }, { seed: 0, index: 3, zone: 'America/Denver' });
    for (let d = 20514; d < 20521; d++)
      expect(c.isOnline(localToUtc('America/Denver', d, 2 * 60))).toBe(false);
  });

  it('is a pure function of seed, device and time', () => {
    const a = new Connectivity({ kind: 'vehicle' }, { seed: 5, index: 9, zone: 'UTC' });
    const b = new Connectivity({ kind: 'vehicle' }, { seed: 5, index: 9, zone: 'UTC' });
    const t = START + 30 * HOUR;
    expect(a.nextOnline(t)).toBe(b.nextOnline(t));
    expect(a.sessionAt(t + 7 * HOUR)).toEqual(b.sessionAt(t + 7 * HOUR));
    expect(new Connectivity({ kind: 'vehicle' }, { seed: 6, index: 9, zone: 'UTC' }).nextOnline(t)).not.toBe(
      undefined,
    );
  });

  it('custom: on/off by weekday, sessions crossing midnight', () => {
    const p: ProfileSpec = {
      kind: 'custom',
      windows: [{ days: [1, 2, 3, 4, 5], on: 22 * 60, off: 6 * 60 }],
      jitterMin: 0,
      heartbeatMs: 60_000,
    };
    const c = new Connectivity(p, { seed: 0, index: 0, zone: 'UTC' });
    expect(c.isOnline(Date.parse('2026-03-02T23:00:00Z'))).toBe(true); // Monday night
    expect(c.isOnline(Date.parse('2026-03-03T05:00:00Z'))).toBe(true); // Tuesday early, same session
    expect(c.isOnline(Date.parse('2026-03-03T12:00:00Z'))).toBe(false);
    expect(c.sessionAt(Date.parse('2026-03-02T23:00:00Z'))).toEqual([
      Date.parse('2026-03-02T22:00:00Z'),
      Date.parse('2026-03-03T06:00:00Z'),
    ]);
    expect(c.nextOnline(Date.parse('2026-03-03T12:00:00Z'))).toBe(Date.parse('2026-03-03T22:00:00Z'));
  });
});
