/**
 * A planned device's status is derived with its connectivity class's thresholds, read from its own row
 * (docs/connectivity.md), or the server-wide ones when the row has none.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_THRESHOLDS } from '../../core/device.js';
import { toPlanDevice } from './plan-query.js';

const NOW = Date.UTC(2026, 11, 1, 8, 30);
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const ctx = { now: NOW, thresholds: DEFAULT_THRESHOLDS };

const row = (lastSeenAgoMs: number, own: { offline: number; abandoned: number } | null) => ({
  id: 'sensor-1',
  last_seen: NOW - lastSeenAgoMs,
  decommissioned_at: null,
  timezone: 'UTC',
  hardware_type: 'sensor-v2',
  firmware_version: '1.0.0',
  tag_value: null,
  busy_with: null,
  offline_after_ms: own?.offline ?? null,
  abandoned_after_ms: own?.abandoned ?? null,
});

describe('toPlanDevice', () => {
  it("derives the status with the row's class thresholds, else the server-wide ones", () => {
    const hourly = { offline: 3 * HOUR, abandoned: 30 * 24 * HOUR };
    expect(toPlanDevice(row(30 * MINUTE, hourly), null, ctx)).toMatchObject({
      status: 'online',
      offlineAfterMs: 3 * HOUR,
    });
    expect(toPlanDevice(row(4 * HOUR, hourly), null, ctx).status).toBe('offline');
    expect(toPlanDevice(row(30 * MINUTE, null), null, ctx)).toMatchObject({
      status: 'offline',
      offlineAfterMs: null,
    });
    // PostgreSQL answers bigint columns as text.
    const asText = {
      ...row(30 * MINUTE, null),
      offline_after_ms: '10800000',
      abandoned_after_ms: '2592000000',
    };
    expect(toPlanDevice(asText, null, ctx)).toMatchObject({ status: 'online', offlineAfterMs: 3 * HOUR });
  });

  it('a class shorter than the server-wide threshold makes a device offline sooner', () => {
    const mains = { offline: 2 * MINUTE, abandoned: 24 * HOUR };
    expect(toPlanDevice(row(5 * MINUTE, mains), null, ctx).status).toBe('offline');
    expect(toPlanDevice(row(5 * MINUTE, null), null, ctx).status).toBe('online');
  });
});
