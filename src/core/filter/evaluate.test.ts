import { describe, expect, it } from 'vitest';
import { DEFAULT_THRESHOLDS, type Device } from '../device.js';
import { matchesFilter } from './evaluate.js';
import { parseFilter } from './parser.js';

const NOW = Date.UTC(2024, 9, 20, 12);
const MINUTE = 60_000;
const DAY = 86_400_000;
const ctx = { now: NOW, thresholds: DEFAULT_THRESHOLDS };

function device(over: Partial<Device> = {}): Device {
  return {
    id: 'truck-17',
    name: 'Truck 17',
    status: 'unknown', // ignored: status is derived from lastSeen
    firmwareVersion: '2.2.0',
    hardwareType: 'pos-x200',
    location: 'New York, NY',
    timezone: 'America/New_York',
    customer: 'acme',
    tags: { region: 'northeast', channel: 'retail' },
    lastSeen: NOW - MINUTE,
    createdAt: Date.UTC(2024, 0, 1),
    decommissionedAt: null,
    hasCredential: true,
    admission: 'accepted',
    telemetry: { geo: null, battery: null, signalStrength: null, deviceTime: null, metrics: {} },
    ...over,
  };
}

const matches = (filter: string, d: Device) => matchesFilter(parseFilter(filter), d, ctx);
/** Which of these firmware versions the filter selects. */
const firmware = (filter: string, versions: Array<string | null>) =>
  versions.filter((v) => matches(filter, device({ firmwareVersion: v })));

describe('matchesFilter', () => {
  it('matches everything without a filter', () => {
    expect(matchesFilter(undefined, device(), ctx)).toBe(true);
    expect(matches('   ', device())).toBe(true);
  });

  it('compares firmware by SemVer precedence, not as text', () => {
    const all = ['2.1.9', '2.2.0-rc.1', '2.2.0', '2.10.0', '3.0.0-rc.1', '3.0.0', 'banana', null];
    expect(firmware('firmware < 2.2.0', all)).toEqual(['2.1.9', '2.2.0-rc.1']);
    expect(firmware('firmware <= 2.2.0', all)).toEqual(['2.1.9', '2.2.0-rc.1', '2.2.0']);
    expect(firmware('firmware > 2.2.0', all)).toEqual(['2.10.0', '3.0.0-rc.1', '3.0.0']);
    expect(firmware('firmware >= 2.10.0', all)).toEqual(['2.10.0', '3.0.0-rc.1', '3.0.0']);
    expect(firmware('firmware < 3.0.0', all)).toContain('3.0.0-rc.1');
    expect(firmware('firmware = 2.2.0', all)).toEqual(['2.2.0']);
    expect(firmware('firmware = ^2.1.0', all)).toEqual(['2.1.9', '2.2.0-rc.1', '2.2.0', '2.10.0']);
    expect(firmware('firmware = ~2.2.0', all)).toEqual(['2.2.0']);
    expect(firmware('firmware = 2.x', all)).toEqual(['2.1.9', '2.2.0-rc.1', '2.2.0', '2.10.0']);
    expect(firmware('firmware = *', all)).toEqual(all.slice(0, 6));
    expect(firmware('firmware in (2.1.x, 3.0.0)', all)).toEqual(['2.1.9', '3.0.0']);
    // != is the complement of =: devices without a parseable firmware match it.
    expect(firmware('firmware != 2.x', all)).toEqual(['3.0.0-rc.1', '3.0.0', 'banana', null]);
    expect(firmware('not firmware < 2.2.0', all)).toEqual([
      '2.2.0',
      '2.10.0',
      '3.0.0-rc.1',
      '3.0.0',
      'banana',
      null,
    ]);
    expect(firmware('firmware = 2.2.0', ['v2.2.0', '2.2', '2.2.0+build.7'])).toEqual([
      'v2.2.0',
      '2.2',
      '2.2.0+build.7',
    ]);
  });

  it('derives status from last_seen at the exact thresholds', () => {
    const { offlineAfterMs: off, abandonedAfterMs: ab } = DEFAULT_THRESHOLDS;
    const at = (lastSeen: number | null, decommissionedAt: number | null = null) =>
      ['unknown', 'online', 'offline', 'abandoned', 'decommissioned'].filter((s) =>
        matches(`status = ${s}`, device({ lastSeen, decommissionedAt })),
      );
    expect(at(NOW - off)).toEqual(['online']);
    expect(at(NOW - off - 1)).toEqual(['offline']);
    expect(at(NOW - ab)).toEqual(['offline']);
    expect(at(NOW - ab - 1)).toEqual(['abandoned']);
    expect(at(NOW + MINUTE)).toEqual(['online']);
    expect(at(null)).toEqual(['unknown']);
    expect(at(NOW, NOW)).toEqual(['decommissioned']);
    expect(matches('status in (offline, abandoned)', device({ lastSeen: NOW - DAY }))).toBe(true);
    expect(matches('status not in (offline, abandoned)', device({ lastSeen: NOW - DAY }))).toBe(false);
  });

  it('globs id and name, compares other text exactly and case-sensitively', () => {
    const d = device();
    expect(matches('id = truck-*', d)).toBe(true);
    expect(matches('id = "truck-1?"', d)).toBe(true);
    expect(matches('id = truck-1', d)).toBe(false);
    expect(matches('name = "Truck*"', d)).toBe(true);
    expect(matches('name = "truck*"', d)).toBe(false);
    expect(matches('id in (bus-*, *-17)', d)).toBe(true);
    expect(matches('location = "New York, NY"', d)).toBe(true);
    expect(matches('location = "New York*"', d)).toBe(false);
    expect(matches('hardware = POS-X200', d)).toBe(false);
    expect(matches('timezone = America/New_York and customer = acme', d)).toBe(true);
    expect(matches('admission = accepted', d)).toBe(true);
    expect(matches('admission in (pending, rejected)', device({ admission: 'pending' }))).toBe(true);
    expect(matches('admission = pending', d)).toBe(false);
    expect(matches('hardware != pos-x200', device({ hardwareType: null }))).toBe(true);
    expect(matches('hardware = pos-x200', device({ hardwareType: null }))).toBe(false);
  });

  it('matches tags by key and value; devices without the tag match != and not in', () => {
    const d = device();
    expect(matches('tag.region = northeast', d)).toBe(true);
    expect(matches('tag.region in (west, northeast)', d)).toBe(true);
    expect(matches('tag.region != northeast', d)).toBe(false);
    expect(matches('tag.colour != red', d)).toBe(true);
    expect(matches('tag.colour not in (red)', d)).toBe(true);
    expect(matches('tag.colour = red', d)).toBe(false);
    expect(matches('tag.constructor = x', d)).toBe(false);
    expect(matches('tag.toString != x', d)).toBe(true);
  });

  it('compares times against now, absolute dates, whole days and never', () => {
    const seen = (lastSeen: number | null) => device({ lastSeen });
    expect(matches('last_seen > 30d ago', seen(NOW - 29 * DAY))).toBe(true);
    expect(matches('last_seen > 30d ago', seen(NOW - 30 * DAY))).toBe(false);
    expect(matches('last_seen >= 30d ago', seen(NOW - 30 * DAY))).toBe(true);
    expect(matches('last_seen < 10m ago', seen(NOW - 11 * MINUTE))).toBe(true);
    expect(matches('last_seen < 10m ago', seen(null))).toBe(false);
    expect(matches('not last_seen > 10m ago', seen(null))).toBe(true);
    expect(matches('last_seen > 2024-10-20', seen(NOW))).toBe(true);
    expect(matches('last_seen < 2024-10-20T12:00:00Z', seen(NOW))).toBe(false);
    expect(matches('last_seen <= 2024-10-20T14:00:00+02:00', seen(NOW))).toBe(true);
    expect(matches('last_seen = 2024-10-20', seen(NOW))).toBe(true);
    expect(matches('last_seen = 2024-10-21', seen(NOW))).toBe(false);
    expect(matches('last_seen != 2024-10-21', seen(null))).toBe(true);
    expect(matches('last_seen = never', seen(null))).toBe(true);
    expect(matches('last_seen != never', seen(null))).toBe(false);
    expect(matches('created = 2024-01-01 and created < 1w ago', device())).toBe(true);
  });

  it('combines with and, or, not by precedence', () => {
    const d = device({ hardwareType: 'a' });
    expect(matches('hardware = a or hardware = b and hardware = c', d)).toBe(true);
    expect(matches('(hardware = a or hardware = b) and hardware = c', d)).toBe(false);
    expect(matches('not hardware = b and hardware = a', d)).toBe(true);
    expect(matches('not (hardware = b or hardware = a)', d)).toBe(false);
  });

  it('reads config.drift as a boolean; a device without a desired configuration does not drift', () => {
    expect(matches('config.drift = true', device({ configDrift: true }))).toBe(true);
    expect(matches('config.drift = TRUE', device({ configDrift: false }))).toBe(false);
    expect(matches('config.drift = false', device())).toBe(true);
    expect(matches('config.drift != false', device({ configDrift: true }))).toBe(true);
    expect(parseFilter('config.drift != true')).toEqual({
      kind: 'not',
      child: { kind: 'config_drift', value: true },
    });
  });
});
