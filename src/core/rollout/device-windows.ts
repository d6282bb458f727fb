/**
 * Maintenance windows that belong to a device (a till's closing hours, a vehicle's depot time), set by an
 * operator or reported by the device, and how a rollout honours them.
 *
 * A device's windows *override* the rollout's, they never intersect it, and only in a rollout that asks for
 * them (`window: device_defined`): the device (or whoever runs it) knows when it may be disturbed, and an
 * intersection of two unrelated windows is empty more often than not, so such a device would never update.
 * A device without windows of its own falls back to the rollout's `fallback_window` (none: not held by any
 * window). A rollout with a window of its own ignores device windows: the operator chose that window.
 * A device may have several windows: it is open when any of them is.
 */
import { Type } from 'typebox';
import { FleetError } from '../errors.js';
import { checkSchema, normalizeWindow, type RolloutSpec, WindowSchema } from './spec.js';
import {
  currentOrNextWindow,
  isInWindow,
  type MaintenanceWindow,
  nextWindowStart,
  WEEKDAYS,
  windowZone,
} from './window.js';

export const MAX_DEVICE_WINDOWS = 8;

export const DeviceWindowsSchema = Type.Array(WindowSchema, {
  minItems: 1,
  maxItems: MAX_DEVICE_WINDOWS,
  description: "The device's windows, in the rollout spec's `window` form; open when any of them is",
});

/** Checks a device's window documents, errors naming the field (`windows[1].start: …`). */
export function parseDeviceWindows(input: unknown): MaintenanceWindow[] {
  if (!Array.isArray(input)) {
    throw new FleetError('VALIDATION', 'windows: must be a list of windows', { field: 'windows' });
  }
  if (input.length > MAX_DEVICE_WINDOWS) {
    throw new FleetError(
      'VALIDATION',
      `windows: must have at most ${MAX_DEVICE_WINDOWS} items (found ${input.length})`,
      { field: 'windows' },
    );
  }
  input.forEach((w, i) => {
    // As the spec's window: a days list far too long is refused before the schema reports each of its items.
    const days = (w as { days?: unknown } | null)?.days;
    if (Array.isArray(days) && days.length > WEEKDAYS.length) {
      throw new FleetError(
        'VALIDATION',
        `windows[${i}].days: must have at most ${WEEKDAYS.length} items (found ${days.length})`,
        { field: `windows[${i}].days` },
      );
    }
  });
  checkSchema(DeviceWindowsSchema, input, 'windows');
  return input.map((w, i) => normalizeWindow(w, `windows[${i}]`));
}

/** The windows that hold this device in this rollout: [] means no window holds it. */
export function effectiveWindows(
  spec: Pick<RolloutSpec, 'window' | 'deviceWindows'>,
  own: readonly MaintenanceWindow[] | null | undefined,
): readonly MaintenanceWindow[] {
  if (spec.deviceWindows && own && own.length > 0) return own;
  return spec.window ? [spec.window] : [];
}

/** Whether any of the windows is open at `now` (true when there are none: nothing holds the device). */
export function inAnyWindow(
  windows: readonly MaintenanceWindow[],
  deviceZone: string | null,
  now: number,
): boolean {
  return windows.length === 0 || windows.some((w) => isInWindow(w, windowZone(w, deviceZone), now));
}

/** The next opening of any of the windows after `now`. */
export function nextOpening(
  windows: readonly MaintenanceWindow[],
  deviceZone: string | null,
  now: number,
): number {
  return Math.min(...windows.map((w) => nextWindowStart(w, windowZone(w, deviceZone), now)));
}

/** When the first window open at or after `from` closes (missed_window: on_connect counts from there). */
export function firstWindowEnd(
  windows: readonly MaintenanceWindow[],
  deviceZone: string | null,
  from: number,
): number {
  return Math.min(...windows.map((w) => currentOrNextWindow(w, windowZone(w, deviceZone), from).end));
}

/** The zones the windows run in for this device, for a hold's reason. */
export function windowZones(windows: readonly MaintenanceWindow[], deviceZone: string | null): string {
  return [...new Set(windows.map((w) => windowZone(w, deviceZone)))].join(', ');
}

/**
 * Where a device's windows come from, under `window: device_defined`: its own; else the union of the windows
 * of every group it is in; else the union of those of every tag value it has; else none (the rollout's
 * fallback). The nearer source wins outright, as an own window replaces the rollout's: a till's own closing
 * hours are not widened by its customer's.
 */
export type WindowSourceKind = 'device' | 'group' | 'tag';

export interface ResolvedWindows {
  windows: MaintenanceWindow[];
  source: WindowSourceKind;
  /** The groups' names or the `key=value` tags they come from (empty for the device's own). */
  from: string[];
}

export interface NamedWindows {
  /** A group's name, or a tag as `key=value`. */
  name: string;
  windows: readonly MaintenanceWindow[];
}

/** The union of several sources' windows, each window once (open when any of them is). */
function unionOf(sources: readonly NamedWindows[]): MaintenanceWindow[] {
  const seen = new Set<string>();
  const all: MaintenanceWindow[] = [];
  for (const s of sources) {
    for (const w of s.windows) {
      const key = JSON.stringify(w);
      if (seen.has(key)) continue;
      seen.add(key);
      all.push(w);
    }
  }
  return all;
}

/** A device's windows by precedence (see above); null: none, the rollout's fallback window holds it. */
export function resolveWindows(
  own: readonly MaintenanceWindow[] | null | undefined,
  groups: readonly NamedWindows[],
  tags: readonly NamedWindows[],
): ResolvedWindows | null {
  if (own && own.length > 0) return { windows: [...own], source: 'device', from: [] };
  const sorted = (s: readonly NamedWindows[]) => [...s].sort((a, b) => (a.name < b.name ? -1 : 1));
  if (groups.length > 0) {
    const g = sorted(groups);
    return { windows: unionOf(g), source: 'group', from: g.map((x) => x.name) };
  }
  if (tags.length > 0) {
    const t = sorted(tags);
    return { windows: unionOf(t), source: 'tag', from: t.map((x) => x.name) };
  }
  return null;
}
