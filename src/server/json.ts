/** Core objects → the API's JSON (snake_case, ISO-8601 UTC instants). */
import type { Device } from '../core/device.js';
import type {
  DeviceUpdate,
  EnrollmentTokenInfo,
  FleetStats,
  Release,
  StoredEvent,
  UpdateOffer,
} from '../store/store.js';
import type { DeviceJson } from './schemas.js';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function deviceJson(d: Device): DeviceJson {
  return {
    id: d.id,
    name: d.name,
    status: d.status,
    firmware_version: d.firmwareVersion,
    hardware_type: d.hardwareType,
    location: d.location,
    timezone: d.timezone,
    customer: d.customer,
    tags: d.tags,
    last_seen: iso(d.lastSeen),
    created_at: new Date(d.createdAt).toISOString(),
    decommissioned_at: iso(d.decommissionedAt),
    enrolled: d.hasCredential,
    telemetry: {
      lat: d.telemetry.geo?.lat ?? null,
      lon: d.telemetry.geo?.lon ?? null,
      battery: d.telemetry.battery,
      signal_strength: d.telemetry.signalStrength,
      device_time: d.telemetry.deviceTime,
      metrics: d.telemetry.metrics,
    },
  };
}

export function statsJson(s: FleetStats, at: number) {
  return {
    total: s.total,
    by_status: s.byStatus,
    firmware: s.firmware,
    hardware: s.hardware.map((h) => ({ hardware_type: h.hardwareType, count: h.count })),
    tags: s.tags,
    silent: { over_24h: s.silent.over24h, over_30d: s.silent.over30d },
    at: new Date(at).toISOString(),
  };
}

export function eventJson(e: StoredEvent) {
  return {
    id: e.id,
    at: new Date(e.at).toISOString(),
    type: e.type,
    device_id: e.deviceId,
    rollout_id: e.rolloutId,
    actor: e.actor,
    reason: e.reason,
    data: e.data,
  };
}

/** One pending update as the device protocol describes it (docs/device-protocol.md). */
export function pendingUpdateJson({ update, release, retryAfterSec, soft }: UpdateOffer) {
  return {
    id: update.id,
    rollout_id: update.rolloutId,
    state: update.state,
    last_seq: update.lastSeq,
    action: update.action,
    manifest: release.manifest,
    signature: release.signature,
    download_url: `/api/device/v1/artifacts/${release.sha256}`,
    retry_after: retryAfterSec,
    soft,
  };
}

export function releaseJson(r: Release) {
  return {
    id: r.id,
    name: r.name,
    version: r.version,
    type: r.type,
    hardware: r.hardware,
    size: r.size,
    sha256: r.sha256,
    key_id: r.keyId,
    allow_downgrade: r.allowDowngrade,
    created_at: new Date(r.createdAt).toISOString(),
    manifest: r.manifest,
    signature: r.signature,
  };
}

export function updateJson(u: DeviceUpdate) {
  return {
    id: u.id,
    device_id: u.deviceId,
    release_id: u.releaseId,
    rollout_id: u.rolloutId,
    phase: u.phase,
    purpose: u.purpose,
    state: u.state,
    action: u.action,
    progress: u.progress,
    error: u.error,
    attempts: u.attempts,
    from_version: u.fromVersion,
    created_at: new Date(u.createdAt).toISOString(),
    updated_at: new Date(u.updatedAt).toISOString(),
    finished_at: iso(u.finishedAt),
  };
}

/** An enrollment token as listings show it: its id, never its secret. */
export function enrollmentTokenJson(t: EnrollmentTokenInfo, now: number) {
  const state =
    t.revokedAt !== null
      ? ('revoked' as const)
      : t.expiresAt !== null && t.expiresAt <= now
        ? ('expired' as const)
        : t.usesLeft === 0
          ? ('used_up' as const)
          : ('usable' as const);
  return {
    id: t.id,
    uses_left: t.usesLeft,
    expires_at: iso(t.expiresAt),
    tags: t.tags,
    claim: t.claim,
    created_at: new Date(t.createdAt).toISOString(),
    revoked_at: iso(t.revokedAt),
    state,
  };
}
