/**
 * Connectivity classes (docs/connectivity.md): how often a kind of device is asked to heartbeat and how long
 * its silence may last before it counts as offline, then abandoned. A class matches devices by hardware type,
 * by one tag value or by a group; a device in no class keeps the server-wide thresholds. Pure: the store
 * resolves each device's class (the per-device columns of migration 0040) from what is decided here.
 */
import type { StatusThresholds } from './device.js';
import { FleetError } from './errors.js';
import type { FilterNode } from './filter/index.js';

export type ConnectivityMatch =
  | { kind: 'hardware'; hardware: string }
  | { kind: 'tag'; key: string; value: string }
  | { kind: 'group'; group: string };

export interface ConnectivityClass {
  name: string;
  match: ConnectivityMatch;
  heartbeatIntervalMs: number;
  offlineAfterMs: number;
  abandonedAfterMs: number;
  /** Higher first when a device matches several classes; equal priorities fall back to specificity. */
  priority: number;
}

/** A class as stored: who changed it last, and how many devices are in it now (0 when not counted). */
export interface StoredConnectivityClass extends ConnectivityClass {
  updatedBy: string | null;
  updatedAt: number;
  deviceCount: number;
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const MIN_INTERVAL_MS = 10_000;
const MAX_MS = 366 * 86_400_000;
export const MAX_CONNECTIVITY_CLASSES = 64;

/** A group names a few devices, a tag value more, a hardware type the most: the narrower match wins. */
const SPECIFICITY: Record<ConnectivityMatch['kind'], number> = { group: 3, tag: 2, hardware: 1 };

/**
 * The order in which a device's classes are tried; the first that matches is the device's. Explicit priority
 * first (higher wins), then the more specific match (group > tag > hardware), then the name.
 */
export function byPrecedence(a: ConnectivityClass, b: ConnectivityClass): number {
  return (
    b.priority - a.priority ||
    SPECIFICITY[b.match.kind] - SPECIFICITY[a.match.kind] ||
    (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  );
}

const invalid = (field: string, message: string) => new FleetError('VALIDATION', message, { field });

/** Refuses a class that could not work, naming the field: checked before anything is written. */
export function checkConnectivityClass(c: ConnectivityClass): void {
  if (!NAME.test(c.name)) {
    throw invalid(
      'name',
      `name "${c.name}": use 1-63 of a-z, 0-9, ".", "_", "-", starting with a letter or digit`,
    );
  }
  for (const [field, ms] of [
    ['heartbeat_interval', c.heartbeatIntervalMs],
    ['offline_after', c.offlineAfterMs],
    ['abandoned_after', c.abandonedAfterMs],
  ] as const) {
    if (!Number.isSafeInteger(ms) || ms < MIN_INTERVAL_MS || ms > MAX_MS) {
      throw invalid(field, `${field} must be between 10s and 366d`);
    }
  }
  // Agents heartbeat up to 10 % late (jitter, agent/schedule.ts): a device on time must stay online through it.
  if (c.offlineAfterMs <= c.heartbeatIntervalMs * 1.1) {
    throw invalid(
      'offline_after',
      'offline_after must be longer than heartbeat_interval plus 10 % (agents heartbeat up to 10 % late; a device on time would be offline between heartbeats); 2-3 intervals is usual',
    );
  }
  if (c.abandonedAfterMs <= c.offlineAfterMs) {
    throw invalid('abandoned_after', 'abandoned_after must be longer than offline_after');
  }
  if (!Number.isSafeInteger(c.priority) || Math.abs(c.priority) > 1_000_000) {
    throw invalid('priority', 'priority must be a whole number between -1000000 and 1000000');
  }
  const m = c.match;
  const text = m.kind === 'hardware' ? m.hardware : m.kind === 'tag' ? m.value : m.group;
  if (
    text.length === 0 ||
    text.length > 256 ||
    (m.kind === 'tag' && (m.key.length === 0 || m.key.length > 128))
  ) {
    throw invalid('match', 'match: name exactly one non-empty hardware, tag (key and value) or group');
  }
}

/** The class's match as a filter term, for the store to compile (a group term is expanded before). */
export function matchFilter(m: ConnectivityMatch): FilterNode {
  switch (m.kind) {
    case 'hardware':
      return { kind: 'text', field: 'hardware', values: [m.hardware], glob: false };
    case 'tag':
      return { kind: 'tag', key: m.key, values: [m.value] };
    case 'group':
      return { kind: 'group', name: m.group };
  }
}

/** The thresholds a device's status is derived with: its class's, or the server-wide ones. */
export function thresholdsOf(
  own: { offlineAfterMs: number | null; abandonedAfterMs: number | null },
  defaults: StatusThresholds,
): StatusThresholds {
  return own.offlineAfterMs === null || own.abandonedAfterMs === null
    ? defaults
    : { offlineAfterMs: own.offlineAfterMs, abandonedAfterMs: own.abandonedAfterMs };
}

/** The heartbeat answer's `next_heartbeat`: the device's class interval in whole seconds, else the server's. */
export function nextHeartbeatSec(classIntervalMs: number | undefined, serverSec: number): number {
  return classIntervalMs === undefined ? serverSec : Math.max(1, Math.round(classIntervalMs / 1000));
}
