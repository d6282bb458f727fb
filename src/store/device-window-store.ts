/**
 * The port of device windows and deferrals (shared/device-windows.ts): a device's own maintenance windows and its
 * deferrals of offered updates (docs/rollouts.md, "Windows that belong to devices").
 */
import type { WindowInput } from '../core/rollout/spec.js';
import type { MaintenanceWindow } from '../core/rollout/window.js';

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
}
