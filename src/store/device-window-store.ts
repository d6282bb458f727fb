/**
 * The port of device windows and deferrals (shared/device-windows.ts): a device's own maintenance windows and its
 * deferrals of offered updates (docs/rollouts.md, "Windows that belong to devices").
 */
import type { ResolvedWindows } from '../core/rollout/device-windows.js';
import type { WindowInput } from '../core/rollout/spec.js';
import type { MaintenanceWindow } from '../core/rollout/window.js';
import type { TimeContext } from './store.js';

/** A device's own maintenance windows. */
export interface DeviceWindows {
  deviceId: string;
  /** Window documents, the rollout spec's `window` form with every default spelled out. */
  windows: WindowInput[];
  source: 'operator' | 'device';
  updatedBy: string | null;
  updatedAt: number;
}

/** A device's deferrals of one offered update. */
export interface Deferral {
  updateId: string;
  deviceId: string;
  rolloutId: string | null;
  count: number;
  firstAt: number;
  deferredUntil: number;
  updatedAt: number;
}

/** What windows may be set on besides a device: a group (by name) or a tag value. */
export type WindowTarget = { kind: 'group'; name: string } | { kind: 'tag'; key: string; value: string };

/** A group's or a tag value's maintenance windows, taken by devices without windows of their own. */
export interface SharedWindows {
  target: WindowTarget;
  windows: WindowInput[];
  updatedBy: string | null;
  updatedAt: number;
}

export interface DeviceWindowStore {
  /** Replaces the device's windows, with a `device.windows_set` event; DEVICE_NOT_FOUND for an unknown device. */
  set(
    deviceId: string,
    windows: readonly MaintenanceWindow[],
    source: DeviceWindows['source'],
    actor: string,
    now: number,
  ): Promise<DeviceWindows>;
  get(deviceId: string): Promise<DeviceWindows | undefined>;
  /** False when the device had no windows. */
  remove(deviceId: string, actor: string, now: number): Promise<boolean>;
  /** Devices with windows, by id, after `after`. */
  list(query: { after?: string; limit: number }): Promise<DeviceWindows[]>;
  /** The device's deferrals, newest first (at most 100). */
  deferrals(deviceId: string): Promise<Deferral[]>;
  /**
   * Defers an offered update for `forMs` (cut to the budget), giving back its slot if it held one; NOT_FOUND for
   * another device's update, CONFLICT when it cannot be deferred (forced, installing, budget spent).
   */
  defer(deviceId: string, updateId: string, forMs: number, now: number): Promise<Deferral>;
  /**
   * Replaces a group's or a tag value's windows, with a `group.windows_set` or `tag.windows_set` event; NOT_FOUND
   * for a group that does not exist.
   */
  setShared(
    target: WindowTarget,
    windows: readonly MaintenanceWindow[],
    actor: string,
    now: number,
  ): Promise<SharedWindows>;
  getShared(target: WindowTarget): Promise<SharedWindows | undefined>;
  /** False when the group or tag value had no windows. */
  removeShared(target: WindowTarget, actor: string, now: number): Promise<boolean>;
  /** Groups (by name) or tag values (by key, then value) with windows, after `after` (a name or `key=value`). */
  listShared(kind: WindowTarget['kind'], query: { after?: string; limit: number }): Promise<SharedWindows[]>;
  /**
   * The windows each device takes under `window: device_defined` (core/rollout/device-windows.ts,
   * resolveWindows): its own, else its groups', else its tag values'. Devices with none are left out.
   */
  resolve(deviceIds: readonly string[], ctx: TimeContext): Promise<Map<string, ResolvedWindows>>;
}
