/** The device model and the rule that derives a device's status. Pure: no I/O, time is passed in. */
import type { DeviceAdmission } from './admission.js';
import { FleetError } from './errors.js';

export const DEVICE_STATUSES = ['unknown', 'online', 'offline', 'abandoned', 'decommissioned'] as const;
export type DeviceStatus = (typeof DEVICE_STATUSES)[number];

/** The orders a device listing can be sorted in (the API's `sort`, the store's query). */
export const DEVICE_SORT_FIELDS = ['id', 'name', 'last_seen', 'firmware', 'hardware', 'created'] as const;
export type DeviceSortField = (typeof DEVICE_SORT_FIELDS)[number];

export interface StatusThresholds {
  /** A device is offline once its last heartbeat is older than this. */
  offlineAfterMs: number;
  /** A device is abandoned once its last heartbeat is older than this. */
  abandonedAfterMs: number;
}

export const DEFAULT_THRESHOLDS: StatusThresholds = {
  offlineAfterMs: 10 * 60_000,
  abandonedAfterMs: 30 * 86_400_000,
};

/**
 * Status is never taken from input: it follows from when the device was last heard from.
 * Online while the last heartbeat is at most `offlineAfterMs` old (inclusive).
 */
export function deviceStatus(
  lastSeen: number | null,
  decommissionedAt: number | null,
  now: number,
  thresholds: StatusThresholds = DEFAULT_THRESHOLDS,
): DeviceStatus {
  if (decommissionedAt !== null) return 'decommissioned';
  if (lastSeen === null) return 'unknown';
  const silence = now - lastSeen;
  if (silence <= thresholds.offlineAfterMs) return 'online';
  if (silence <= thresholds.abandonedAfterMs) return 'offline';
  return 'abandoned';
}

export interface GeoPoint {
  lat: number;
  lon: number;
}

export interface Device {
  id: string;
  name: string;
  status: DeviceStatus;
  firmwareVersion: string | null;
  hardwareType: string | null;
  location: string | null;
  timezone: string | null;
  customer: string | null;
  tags: Record<string, string>;
  lastSeen: number | null;
  createdAt: number;
  decommissionedAt: number | null;
  hasCredential: boolean;
  /** Whether the device is admitted to the fleet (core/admission.ts): only accepted devices are offered updates. */
  admission: DeviceAdmission;
  telemetry: DeviceTelemetry;
  /**
   * What the filter's `telemetry.*` and `inventory.*` terms read (docs/telemetry.md), when loaded: the latest
   * value of each metric, the OS, kernel and package versions of the latest inventory. Absent: none reported.
   */
  reported?: DeviceReported;
  /** Whether the device's configuration drifts from the desired one (core/config-document.ts); absent: it does not. */
  configDrift?: boolean;
  /**
   * The connectivity class the device is in (docs/connectivity.md) with its figures, which its status is derived
   * with; absent: the server-wide thresholds and interval.
   */
  connectivity?: StatusThresholds & { className: string; heartbeatIntervalMs: number };
}

export interface DeviceReported {
  latest: Record<string, number>;
  os: string | null;
  kernel: string | null;
  packages: Record<string, string>;
}

export interface DeviceTelemetry {
  geo: GeoPoint | null;
  battery: number | null;
  signalStrength: number | null;
  deviceTime: string | null;
  metrics: Record<string, unknown>;
}

/** What a device reports on each heartbeat (seed 000's body, validated at the edge). */
export interface Heartbeat {
  deviceId: string;
  firmwareVersion?: string;
  timestamp?: string;
  location?: GeoPoint;
  battery?: number;
  signalStrength?: number;
  metrics?: Record<string, unknown>;
  /** Reboots and application crashes since the running release was installed (the health gate reads them). */
  health?: { reboots?: number; appCrashes?: number };
}

/** Metadata an operator may set on a device: everything except what is derived or reported. */
export interface DeviceRecord {
  id: string;
  name?: string;
  firmwareVersion?: string | null;
  hardwareType?: string | null;
  location?: string | null;
  timezone?: string | null;
  customer?: string | null;
  tags?: Record<string, string>;
  lastSeen?: number | null;
}

const DEVICE_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

export function isValidDeviceId(id: string): boolean {
  return DEVICE_ID.test(id);
}

const zoneValidity = new Map<string, boolean>();

/** Remembered per name: building an Intl formatter to find out costs tens of microseconds. */
export function isValidTimeZone(zone: string): boolean {
  let valid = zoneValidity.get(zone);
  if (valid === undefined) {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: zone });
      valid = true;
    } catch {
      valid = false;
    }
    // Names come from input: remember a bounded number of them.
    if (zoneValidity.size > 10_000) zoneValidity.clear();
    zoneValidity.set(zone, valid);
  }
  return valid;
}

/** Refuses a zone that is not IANA ("Mars/Base", ""): one check and one message for import and enrollment. */
export function checkTimeZone(zone: string, field: string): void {
  if (!isValidTimeZone(zone)) {
    throw new FleetError('VALIDATION', `${field}: "${zone}" is not an IANA time zone (e.g. Europe/Berlin)`, {
      field,
    });
  }
}
