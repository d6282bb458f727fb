import { describe, expect, it } from 'vitest';
import {
  byPrecedence,
  type ConnectivityClass,
  checkConnectivityClass,
  nextHeartbeatSec,
  thresholdsOf,
} from './connectivity.js';
import { DEFAULT_THRESHOLDS } from './device.js';

const H = 3_600_000;
const base: ConnectivityClass = {
  name: 'hourly',
  match: { kind: 'hardware', hardware: 'sensor-v2' },
  heartbeatIntervalMs: H,
  offlineAfterMs: 3 * H,
  abandonedAfterMs: 720 * H,
  priority: 0,
};

describe('connectivity classes', () => {
  it('orders by priority, then group > tag > hardware, then name', () => {
    const hw = { ...base, name: 'a-hw' };
    const tag = { ...base, name: 'b-tag', match: { kind: 'tag', key: 'power', value: 'mains' } as const };
    const group = { ...base, name: 'c-group', match: { kind: 'group', group: 'pilots' } as const };
    const urgent = { ...base, name: 'z-hw', priority: 5 };
    expect([hw, tag, group, urgent].sort(byPrecedence).map((c) => c.name)).toEqual([
      'z-hw',
      'c-group',
      'b-tag',
      'a-hw',
    ]);
  });

  it('refuses thresholds a device on time would break, naming the field', () => {
    expect(() => checkConnectivityClass(base)).not.toThrow();
    expect(() => checkConnectivityClass({ ...base, offlineAfterMs: H })).toThrow(
      /offline_after must be longer than heartbeat_interval plus 10 %/,
    );
    expect(() => checkConnectivityClass({ ...base, offlineAfterMs: 3_960_000 })).toThrow(/plus 10 %/);
    expect(() => checkConnectivityClass({ ...base, offlineAfterMs: 3_960_001 })).not.toThrow();
    expect(() => checkConnectivityClass({ ...base, abandonedAfterMs: 3 * H })).toThrow(
      /abandoned_after must be longer than offline_after/,
    );
    expect(() => checkConnectivityClass({ ...base, heartbeatIntervalMs: 1_000 })).toThrow(
      /between 10s and 366d/,
    );
    expect(() => checkConnectivityClass({ ...base, name: 'Hourly' })).toThrow(/name "Hourly"/);
    expect(() => checkConnectivityClass({ ...base, match: { kind: 'hardware', hardware: '' } })).toThrow(
      /match/,
    );
  });

  it("asks a device in a class for its class's interval, others for the server's", () => {
    expect(nextHeartbeatSec(H, 300)).toBe(3600);
    expect(nextHeartbeatSec(undefined, 300)).toBe(300);
    expect(thresholdsOf({ offlineAfterMs: null, abandonedAfterMs: null }, DEFAULT_THRESHOLDS)).toBe(
      DEFAULT_THRESHOLDS,
    );
    expect(thresholdsOf({ offlineAfterMs: 3 * H, abandonedAfterMs: 9 * H }, DEFAULT_THRESHOLDS)).toEqual({
      offlineAfterMs: 3 * H,
      abandonedAfterMs: 9 * H,
    });
  });
});
