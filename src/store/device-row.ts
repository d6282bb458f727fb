/** Mapping between device rows and the core Device type. */
import type { Selectable } from 'kysely';
import { type Device, type DeviceRecord, deviceStatus } from '../core/device.js';
import { versionKey } from '../core/semver.js';
import type { DevicesTable } from './schema.js';
import type { ImportResult, NewEvent, TimeContext } from './store.js';

export type DeviceRow = Selectable<DevicesTable>;

function parseJson<T>(text: string | null, fallback: T): T {
  if (!text) return fallback;
  return JSON.parse(text) as T;
}

/** The device's connectivity class and figures (migration 0040), when it is in one. */
function connectivityOf(row: DeviceRow): Device['connectivity'] {
  const { connectivity_class: name, heartbeat_interval_ms: interval } = row;
  const { offline_after_ms: offline, abandoned_after_ms: abandoned } = row;
  if (name === null || interval === null || offline === null || abandoned === null) return undefined;
  return {
    className: name,
    heartbeatIntervalMs: Number(interval),
    offlineAfterMs: Number(offline),
    abandonedAfterMs: Number(abandoned),
  };
}

export function rowToDevice(row: DeviceRow, ctx: TimeContext): Device {
  const lastSeen = row.last_seen === null ? null : Number(row.last_seen);
  const decommissionedAt = row.decommissioned_at === null ? null : Number(row.decommissioned_at);
  const connectivity = connectivityOf(row);
  return {
    ...(connectivity ? { connectivity } : {}),
    id: row.id,
    name: row.name,
    status: deviceStatus(lastSeen, decommissionedAt, ctx.now, connectivity ?? ctx.thresholds),
    firmwareVersion: row.firmware_version,
    hardwareType: row.hardware_type,
    location: row.location,
    timezone: row.timezone,
    customer: row.customer,
    tags: parseJson<Record<string, string>>(row.tags, {}),
    lastSeen,
    createdAt: Number(row.created_at),
    decommissionedAt,
    hasCredential: row.credential_hash !== null,
    admission: row.admission,
    telemetry: {
      geo: row.geo_lat === null || row.geo_lon === null ? null : { lat: row.geo_lat, lon: row.geo_lon },
      battery: row.battery,
      signalStrength: row.signal_strength,
      deviceTime: row.device_time,
      metrics: parseJson<Record<string, unknown>>(row.metrics, {}),
    },
  };
}

/** The columns an import or enrollment sets from a record, leaving out what the record does not mention. */
export function recordColumns(record: DeviceRecord): Partial<DeviceRow> {
  const columns: Partial<DeviceRow> = {};
  if (record.name !== undefined) columns.name = record.name;
  if (record.firmwareVersion !== undefined) {
    columns.firmware_version = record.firmwareVersion;
    columns.firmware_key = record.firmwareVersion === null ? null : versionKey(record.firmwareVersion);
  }
  if (record.hardwareType !== undefined) columns.hardware_type = record.hardwareType;
  if (record.location !== undefined) columns.location = record.location;
  if (record.timezone !== undefined) columns.timezone = record.timezone;
  if (record.customer !== undefined) columns.customer = record.customer;
  if (record.tags !== undefined) columns.tags = JSON.stringify(record.tags);
  if (record.lastSeen !== undefined) columns.last_seen = record.lastSeen;
  return columns;
}

export function newDeviceRow(record: DeviceRecord, ctx: TimeContext): DeviceRow {
  const lastSeen = record.lastSeen ?? null;
  return {
    id: record.id,
    name: record.name ?? record.id,
    firmware_version: null,
    firmware_key: null,
    hardware_type: null,
    location: null,
    timezone: null,
    customer: null,
    tags: '{}',
    last_seen: null,
    recorded_status: deviceStatus(lastSeen, null, ctx.now, ctx.thresholds),
    created_at: ctx.now,
    updated_at: ctx.now,
    decommissioned_at: null,
    credential_hash: null,
    geo_lat: null,
    geo_lon: null,
    battery: null,
    signal_strength: null,
    device_time: null,
    metrics: null,
    admission: 'accepted',
    admission_key: null,
    preauthorized: 0,
    reboots: null,
    app_crashes: null,
    connectivity_class: null,
    heartbeat_interval_ms: null,
    offline_after_ms: null,
    abandoned_after_ms: null,
    ...recordColumns(record),
  };
}

/** The event that closes an import (Store.importDevices), with its counts. */
export function fleetImportedEvent(counts: ImportResult, at: number, actor: string): NewEvent {
  return {
    at,
    type: 'fleet.imported',
    deviceId: null,
    rolloutId: null,
    actor,
    reason: null,
    data: { ...counts },
  };
}
