import { describe, expect, it } from 'vitest';
import type { StatusChange } from './presence.js';
import { assessReachability, busiestSpan, type ReachabilityTarget } from './reachability.js';
import type { MaintenanceWindow } from './window.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = Date.parse('2024-11-06T12:00:00Z');
const NIGHT: MaintenanceWindow = {
  start: 2 * 60,
  end: 4 * 60,
  timezone: 'device',
  days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'],
  cron: null,
};

/** Online from `on` to `off` (UTC hours) every day of the last `days`. */
function daily(id: string, on: number, off: number, days = 14, zone = 'UTC'): ReachabilityTarget {
  const from = NOW - days * DAY;
  const changes: StatusChange[] = [];
  for (let day = Math.floor(from / DAY) * DAY; day < NOW; day += DAY) {
    if (day + on * HOUR >= from && day + on * HOUR <= NOW)
      changes.push({ at: day + on * HOUR, online: true });
    if (day + off * HOUR >= from && day + off * HOUR <= NOW)
      changes.push({ at: day + off * HOUR, online: false });
  }
  const last = changes[changes.length - 1]!;
  return {
    deviceId: id,
    history: { from, changes, online: last.online, lastSeen: last.online ? NOW : last.at, timezone: zone },
  };
}

const never = (id: string): ReachabilityTarget => ({
  deviceId: id,
  history: { from: NOW - 3 * DAY, changes: [], online: false, lastSeen: null, timezone: 'UTC' },
});

describe('assessReachability', () => {
  it('flags devices off during their window, with the hours they keep as the suggested window', () => {
    const r = assessReachability({
      targets: [daily('shop-1', 8, 22), daily('shop-2', 9, 21), daily('kiosk-1', 0, 24)],
      window: NIGHT,
      missedWindow: 'next_window',
      now: NOW,
    });
    expect(r).toMatchObject({ checked: 3, reachable: 1, tooNew: 0 });
    expect(r.unreachable).toEqual({ count: 2, devices: ['shop-1', 'shop-2'] });
    expect(r.suggestions[0]).toContain('08:00–22:00');
    expect(r.suggestions.join('\n')).toContain('missed_window: on_connect');
  });

  it('lists devices never seen apart, and does not judge those known for less than one window', () => {
    const fresh: ReachabilityTarget = {
      deviceId: 'new',
      history: { from: NOW - 5 * 60_000, changes: [], online: true, lastSeen: NOW, timezone: 'UTC' },
    };
    const r = assessReachability({
      targets: [never('n1'), fresh],
      window: NIGHT,
      missedWindow: 'on_connect',
      now: NOW,
    });
    expect(r.neverSeen).toEqual({ count: 1, devices: ['n1'] });
    expect(r).toMatchObject({ checked: 0, tooNew: 1 });
    expect(r.suggestions.join('\n')).toContain('status != unknown');
    expect(r.suggestions.join('\n')).not.toContain('missed_window');
  });

  it('reads the window in each device’s own zone', () => {
    // Online 07:00–09:00 UTC: 02:00–04:00 in New York (EST), not in UTC.
    const r = assessReachability({
      targets: [daily('ny', 7, 9, 14, 'America/New_York'), daily('utc', 7, 9)],
      window: NIGHT,
      missedWindow: 'next_window',
      now: NOW,
    });
    expect(r.unreachable.devices).toEqual(['utc']);
  });

  it('without a window, a device seen at some time of the last days is reachable', () => {
    const gone = daily('gone', 8, 9, 30);
    gone.history = { ...gone.history, changes: gone.history.changes.filter((c) => c.at < NOW - 10 * DAY) };
    const r = assessReachability({
      targets: [daily('a', 8, 9), gone],
      window: null,
      missedWindow: 'next_window',
      days: 7,
      now: NOW,
    });
    expect(r.unreachable.devices).toEqual(['gone']);
  });
});

describe('busiestSpan', () => {
  it('is the hours most devices are online, wrapping midnight', () => {
    const hours = new Array(24).fill(0);
    for (const h of [22, 23, 0, 1, 2]) hours[h] = 10;
    expect(busiestSpan(hours)).toEqual({ start: 22, end: 3 });
    expect(busiestSpan(new Array(24).fill(0))).toBeNull();
  });
});
