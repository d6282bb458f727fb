/**
 * What one heartbeat does to its device row, decided once for every adapter: which columns change,
 * which events are recorded, what the caller is told. The adapters only read the row and write the result.
 */
import type { DeviceAdmission } from '../core/admission.js';
import { thresholdsOf } from '../core/connectivity.js';
import { type DeviceStatus, deviceStatus, type StatusThresholds } from '../core/device.js';
import { versionKey } from '../core/semver.js';
import type { DevicesTable } from './schema.js';
import type { HeartbeatOutcome, NewEvent, PresentedHeartbeat, TimeContext } from './store.js';

/** The columns of a device a heartbeat needs to read. */
export interface HeartbeatRow {
  credential_hash: string | null;
  recorded_status: DeviceStatus;
  last_seen: number | null;
  decommissioned_at: number | null;
  firmware_version: string | null;
  /** Only an accepted device heartbeats: one waiting for approval, or rejected, is refused like a stranger. */
  admission: DeviceAdmission;
  /** The device's connectivity class figures (0040); null: the server-wide ones. */
  heartbeat_interval_ms: number | string | null;
  offline_after_ms: number | string | null;
  abandoned_after_ms: number | string | null;
}

export interface HeartbeatEffects {
  outcome: HeartbeatOutcome;
  set: Partial<DevicesTable>;
  events: NewEvent[];
}

const REFUSED: HeartbeatEffects = { outcome: { ok: false, reason: 'unauthenticated' }, set: {}, events: [] };

/** Compares two hex digests in time that does not depend on where they differ (no buffers per heartbeat). */
function sameHash(stored: string, given: string): boolean {
  if (stored.length !== given.length) return false;
  let diff = 0;
  for (let i = 0; i < stored.length; i++) diff |= stored.charCodeAt(i) ^ given.charCodeAt(i);
  return diff === 0;
}

export function statusEvent(
  deviceId: string,
  from: DeviceStatus,
  to: DeviceStatus,
  at: number,
  reason: string,
): NewEvent {
  return { at, type: 'device.status', deviceId, rolloutId: null, actor: null, reason, data: { from, to } };
}

/** A status sweep's moves, in order: devices silent for `silentMs` in one of `from` are recorded as `to`. */
export interface StatusSweep {
  from: DeviceStatus[];
  to: DeviceStatus;
  silentMs: number;
  reason: string;
  /** The device's own figure this move reads (migration 0040). */
  column: 'offline_after_ms' | 'abandoned_after_ms';
  /**
   * False: the devices in no class (`column` null), at the server-wide threshold. True: the devices whose class
   * has `silentMs` in `column`. One move per distinct figure keeps each a range of the last_seen index.
   */
  ofClass: boolean;
}

/** The figures of the connectivity classes (docs/connectivity.md) the sweep has moves for. */
export interface ClassFigures {
  offline_after_ms: number | string;
  abandoned_after_ms: number | string;
}

export function statusSweeps(
  thresholds: StatusThresholds,
  classes: readonly ClassFigures[] = [],
): StatusSweep[] {
  const figures = (column: StatusSweep['column']) =>
    [...new Set(classes.map((c) => Number(c[column])))].sort();
  return [
    ...[
      { silentMs: thresholds.abandonedAfterMs, ofClass: false },
      ...figures('abandoned_after_ms').map((silentMs) => ({ silentMs, ofClass: true })),
    ].map(({ silentMs, ofClass }) => ({
      from: ['online', 'offline'] as DeviceStatus[],
      to: 'abandoned' as const,
      silentMs,
      reason: 'no heartbeat within the abandoned threshold',
      column: 'abandoned_after_ms' as const,
      ofClass,
    })),
    ...[
      { silentMs: thresholds.offlineAfterMs, ofClass: false },
      ...figures('offline_after_ms').map((silentMs) => ({ silentMs, ofClass: true })),
    ].map(({ silentMs, ofClass }) => ({
      from: ['online'] as DeviceStatus[],
      to: 'offline' as const,
      silentMs,
      reason: 'no heartbeat within the offline threshold',
      column: 'offline_after_ms' as const,
      ofClass,
    })),
  ];
}

/**
 * Whether the heartbeat proves it comes from its device: the credential's hash matches the stored one, or the
 * client certificate it came over is one of the device's live ones (`certificateLive`, which the adapter read in
 * the same visit: a revocation on any replica counts from the next batch on).
 */
function proven(row: HeartbeatRow, presented: PresentedHeartbeat, certificateLive: boolean): boolean {
  if (presented.certificateFingerprint !== undefined) return certificateLive;
  return row.credential_hash !== null && sameHash(row.credential_hash, presented.credentialHash);
}

export function heartbeatEffects(
  row: HeartbeatRow | undefined,
  presented: PresentedHeartbeat,
  hasOpenUpdates: boolean,
  ctx: TimeContext,
  certificateLive = false,
): HeartbeatEffects {
  if (
    !row ||
    row.decommissioned_at !== null ||
    row.admission !== 'accepted' ||
    !proven(row, presented, certificateLive)
  )
    return REFUSED;
  const hb = presented.heartbeat;
  const lastSeen = row.last_seen === null ? null : Number(row.last_seen);
  const own = thresholdsOf(
    {
      offlineAfterMs: row.offline_after_ms === null ? null : Number(row.offline_after_ms),
      abandonedAfterMs: row.abandoned_after_ms === null ? null : Number(row.abandoned_after_ms),
    },
    ctx.thresholds,
  );
  const previous = deviceStatus(lastSeen, null, ctx.now, own);
  const events: NewEvent[] = [];
  // The sweeper may not have recorded the silence yet: record it now so no transition goes missing.
  if (row.recorded_status === 'online' && previous !== 'online') {
    events.push(statusEvent(hb.deviceId, 'online', previous, ctx.now, 'no heartbeat within threshold'));
  }
  if (previous !== 'online') events.push(statusEvent(hb.deviceId, previous, 'online', ctx.now, 'heartbeat'));
  // Always written (no index holds it): a sweep racing this heartbeat can never leave the device offline.
  const set: Partial<DevicesTable> = { last_seen: ctx.now, recorded_status: 'online' };
  if (hb.firmwareVersion !== undefined && hb.firmwareVersion !== row.firmware_version) {
    set.firmware_version = hb.firmwareVersion;
    set.firmware_key = versionKey(hb.firmwareVersion);
    events.push({
      at: ctx.now,
      type: 'device.firmware_changed',
      deviceId: hb.deviceId,
      rolloutId: null,
      actor: null,
      reason: 'reported by heartbeat',
      data: { from: row.firmware_version, to: hb.firmwareVersion },
    });
  }
  if (hb.location) {
    set.geo_lat = hb.location.lat;
    set.geo_lon = hb.location.lon;
  }
  if (hb.battery !== undefined) set.battery = hb.battery;
  if (hb.signalStrength !== undefined) set.signal_strength = hb.signalStrength;
  if (hb.timestamp !== undefined) set.device_time = hb.timestamp;
  if (hb.metrics !== undefined) set.metrics = JSON.stringify(hb.metrics);
  if (hb.health?.reboots !== undefined) set.reboots = hb.health.reboots;
  if (hb.health?.appCrashes !== undefined) set.app_crashes = hb.health.appCrashes;
  const heartbeatIntervalMs =
    row.heartbeat_interval_ms === null ? undefined : Number(row.heartbeat_interval_ms);
  return {
    outcome: {
      ok: true,
      previousStatus: previous,
      hasOpenUpdates,
      ...(heartbeatIntervalMs === undefined ? {} : { heartbeatIntervalMs }),
    },
    set,
    events,
  };
}
