import { describe, expect, it } from 'vitest';
import { DEFAULT_THRESHOLDS, deviceStatus, isValidDeviceId, isValidTimeZone } from './device.js';

const now = Date.parse('2024-10-20T14:25:00Z');
const MIN = 60_000;
const DAY = 86_400_000;

describe('deviceStatus', () => {
  it('a device never heard from is unknown', () => {
    expect(deviceStatus(null, null, now)).toBe('unknown');
  });
  it('a device heard from just now is online', () => {
    expect(deviceStatus(now, null, now)).toBe('online');
  });
  it('a device silent for exactly 10 min is still online', () => {
    expect(deviceStatus(now - 10 * MIN, null, now)).toBe('online');
  });
  it('a device silent for 10 min 1 ms is offline', () => {
    expect(deviceStatus(now - 10 * MIN - 1, null, now)).toBe('offline');
  });
  it('a device silent for exactly 30 days is still offline', () => {
    expect(deviceStatus(now - 30 * DAY, null, now)).toBe('offline');
  });
  it('a device silent for 30 days 1 ms is abandoned', () => {
    expect(deviceStatus(now - 30 * DAY - 1, null, now)).toBe('abandoned');
  });
  it('a decommissioned device stays decommissioned whatever its last heartbeat', () => {
    expect(deviceStatus(now, now - 1, now)).toBe('decommissioned');
    expect(deviceStatus(null, now - 1, now)).toBe('decommissioned');
  });
  it('honours configured thresholds', () => {
    const thresholds = { offlineAfterMs: MIN, abandonedAfterMs: 2 * MIN };
    expect(deviceStatus(now - MIN, null, now, thresholds)).toBe('online');
    expect(deviceStatus(now - MIN - 1, null, now, thresholds)).toBe('offline');
    expect(deviceStatus(now - 2 * MIN - 1, null, now, thresholds)).toBe('abandoned');
  });
  it('uses the documented defaults', () => {
    expect(DEFAULT_THRESHOLDS).toEqual({ offlineAfterMs: 10 * MIN, abandonedAfterMs: 30 * DAY });
  });
});

describe('identifiers', () => {
  it('accepts fixture ids and rejects ones that could not be a path segment or are empty', () => {
    expect(isValidDeviceId('pos-nyc-001')).toBe(true);
    expect(isValidDeviceId('vehicle_12345:cab')).toBe(true);
    expect(isValidDeviceId('')).toBe(false);
    expect(isValidDeviceId('../etc')).toBe(false);
    expect(isValidDeviceId("a' or 1=1")).toBe(false);
    expect(isValidDeviceId('x'.repeat(129))).toBe(false);
  });
  it('knows IANA zones, Arizona included', () => {
    expect(isValidTimeZone('America/Phoenix')).toBe(true);
    expect(isValidTimeZone('Mars/Olympus')).toBe(false);
  });
});
