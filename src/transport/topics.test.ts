import { describe, expect, it } from 'vitest';
import { Topics } from './topics.js';

describe('MQTT topics', () => {
  const t = new Topics();

  it('parses only device → server topics', () => {
    expect(t.parseUpward('fleetd/v1/devices/pos-1/heartbeat')).toEqual({
      deviceId: 'pos-1',
      kind: 'heartbeat',
      certificate: undefined,
    });
    expect(t.parseUpward('fleetd/v1/devices/pos-1/reports')).toEqual({
      deviceId: 'pos-1',
      kind: 'reports',
      certificate: undefined,
    });
    const fingerprint = 'ab'.repeat(32);
    expect(t.parseUpward(t.certified('fleetd/v1/devices/pos-1/reports', fingerprint))).toEqual({
      deviceId: 'pos-1',
      kind: 'reports',
      certificate: fingerprint,
    });
    expect(
      t.parseUpward(t.certified('fleetd/v1/devices/pos-1/reports', 'not-a-fingerprint')),
    ).toBeUndefined();
    expect(t.parseUpward('fleetd/v1/devices/pos-1/inbox')).toBeUndefined();
    expect(t.parseUpward('fleetd/v1/devices/pos-1/heartbeat/x')).toBeUndefined();
    expect(t.parseUpward('other/v1/devices/pos-1/heartbeat')).toBeUndefined();
  });

  it('lets a device publish its own heartbeats and reports only', () => {
    expect(t.deviceMayPublish('a', 'fleetd/v1/devices/a/heartbeat')).toBe(true);
    expect(t.deviceMayPublish('a', 'fleetd/v1/devices/a/reports')).toBe(true);
    expect(t.deviceMayPublish('a', 'fleetd/v1/devices/a/telemetry')).toBe(true);
    expect(t.deviceMayPublish('a', 'fleetd/v1/devices/b/telemetry')).toBe(false);
    expect(t.deviceMayPublish('a', 'fleetd/v1/devices/a/inbox')).toBe(false);
    expect(t.deviceMayPublish('a', 'fleetd/v1/devices/b/heartbeat')).toBe(false);
  });

  it('lets a device subscribe under its own id only, never through a wildcard at the id level', () => {
    expect(t.deviceMaySubscribe('a', 'fleetd/v1/devices/a/inbox')).toBe(true);
    expect(t.deviceMaySubscribe('a', 'fleetd/v1/devices/a/#')).toBe(true);
    expect(t.deviceMaySubscribe('a', 'fleetd/v1/devices/+/inbox')).toBe(false);
    expect(t.deviceMaySubscribe('a', 'fleetd/v1/devices/#')).toBe(false);
    expect(t.deviceMaySubscribe('a', 'fleetd/v1/devices/b/inbox')).toBe(false);
    expect(t.deviceMaySubscribe('a', '$share/fleetd/fleetd/v1/devices/a/inbox')).toBe(false);
  });

  it('puts replicas in one share group on an external broker', () => {
    expect(t.bridgeFilters('shared')).toEqual([
      '$share/fleetd/fleetd/v1/devices/+/heartbeat',
      '$share/fleetd/fleetd/v1/devices/+/reports',
      '$share/fleetd/fleetd/v1/devices/+/telemetry',
    ]);
    expect(new Topics('acme/fleet').bridgeFilters('plain')).toEqual([
      'acme/fleet/+/heartbeat',
      'acme/fleet/+/reports',
      'acme/fleet/+/telemetry',
    ]);
  });

  it('takes certified topics only from the embedded broker', () => {
    expect(new Topics('acme/fleet').bridgeFilters('embedded')).toEqual([
      'acme/fleet/+/heartbeat',
      'acme/fleet/+/reports',
      'acme/fleet/+/telemetry',
      '$fleetd/certified/+/acme/fleet/+/heartbeat',
      '$fleetd/certified/+/acme/fleet/+/reports',
      '$fleetd/certified/+/acme/fleet/+/telemetry',
    ]);
  });
});
