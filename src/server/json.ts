/**
 * Stored records that only the operator API shows → its JSON (snake_case, ISO-8601 UTC instants), typed by
 * the protocol's schemas. The mappings the device protocol, the transport and webhooks share (devices,
 * events, offers) live in `protocol/`.
 */
import { iso } from '../protocol/common.js';
import type { EnrollmentTokenJson, StatsJson } from '../protocol/operator-api.js';
import type { ReleaseJson, UpdateJson } from '../protocol/releases.js';
import type { DeviceUpdate, EnrollmentTokenInfo, FleetStats, Release } from '../store/store.js';
import type { ReleaseVariant } from '../store/variant-store.js';

export function statsJson(s: FleetStats, at: number): StatsJson {
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

/** With `variants`, the release's variants are listed (those of other releases in it are left out). */
export function releaseJson(r: Release, variants?: readonly ReleaseVariant[]): ReleaseJson {
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
    ...(variants === undefined
      ? {}
      : {
          variants: variants
            .filter((v) => v.releaseId === r.id)
            .map((v) => ({
              client: v.client,
              size: v.size,
              sha256: v.sha256,
              created_at: new Date(v.createdAt).toISOString(),
            })),
        }),
  };
}

export function updateJson(u: DeviceUpdate): UpdateJson {
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
export function enrollmentTokenJson(t: EnrollmentTokenInfo, now: number): EnrollmentTokenJson {
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
