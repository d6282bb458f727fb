/**
 * Whether one device may start its update of a rollout now, decided when the device asks (heartbeat). Slots
 * are handed out afterwards by `allocateSlots`; this only says whether the device is due at all and, if
 * not, when it should ask again.
 */
import { effectiveWindows, firstWindowEnd, inAnyWindow, nextOpening, windowZones } from './device-windows.js';
import type { RolloutState } from './rollout-state.js';
import type { RolloutSpec } from './spec.js';
import type { MaintenanceWindow } from './window.js';

/** What a device update row is for: the update itself, a blue-green switch, or a return to the old version. */
export type UpdatePurpose = 'update' | 'switch' | 'rollback';

export interface OfferQuestion {
  rollout: {
    state: RolloutState;
    currentPhase: number;
    /** When the rollout started running (windows missed are counted from here). */
    startedAt: number | null;
    spec: Pick<RolloutSpec, 'window' | 'missedWindow' | 'endAt' | 'scheduledAt'> &
      Partial<Pick<RolloutSpec, 'deviceWindows'>>;
  };
  update: { phase: number; notBefore: number | null; purpose: UpdatePurpose };
  deviceZone: string | null;
  /** The device's own windows (core/rollout/device-windows.ts): honoured by `window: device_defined`. */
  deviceWindows?: readonly MaintenanceWindow[] | null;
  /** Until when the device has deferred this update (core/rollout/deferral.ts). */
  deferredUntil?: number | null;
  now: number;
}

export interface Hold {
  reason: string;
  /** When to ask again, in seconds (the device keeps heartbeating meanwhile). */
  retryAfterSec: number;
}

/** No hint is longer than this: a device that asks again sooner loses nothing. */
export const MAX_HOLD_SEC = 3600;
const STOPPED_HOLD_SEC = 300;

const secondsUntil = (at: number, now: number) =>
  Math.min(MAX_HOLD_SEC, Math.max(1, Math.ceil((at - now) / 1000)));

/** null: the device may start now (if a slot is free). */
export function holdFor(q: OfferQuestion): Hold | null {
  const { rollout, update, now } = q;
  // A switch or a rollback downloads nothing and undoes or completes what is already there: no gate holds it.
  if (update.purpose !== 'update') return null;
  // A rollout waits in `scheduled` for its first window (seed 000); a device whose own window is open may
  // start without waiting for the engine to notice (the window check below holds the others).
  const firstWindow =
    rollout.state === 'scheduled' && rollout.spec.window !== null && now >= (rollout.spec.scheduledAt ?? 0);
  if (rollout.state !== 'running' && !firstWindow) {
    const until = rollout.state === 'scheduled' ? rollout.spec.scheduledAt : null;
    return {
      reason: `rollout ${rollout.state}`,
      retryAfterSec: until === null ? STOPPED_HOLD_SEC : secondsUntil(until, now),
    };
  }
  if (update.phase > rollout.currentPhase) {
    return { reason: `waiting for phase ${update.phase + 1}`, retryAfterSec: STOPPED_HOLD_SEC };
  }
  if (rollout.spec.endAt !== null && now >= rollout.spec.endAt) {
    return { reason: 'rollout ended (end_at)', retryAfterSec: MAX_HOLD_SEC };
  }
  if (update.notBefore !== null && now < update.notBefore) {
    return { reason: 'retry backoff', retryAfterSec: secondsUntil(update.notBefore, now) };
  }
  if (q.deferredUntil != null && now < q.deferredUntil) {
    return { reason: 'deferred by the device', retryAfterSec: secondsUntil(q.deferredUntil, now) };
  }
  const windows = effectiveWindows(
    { window: rollout.spec.window, deviceWindows: rollout.spec.deviceWindows ?? false },
    q.deviceWindows,
  );
  if (inAnyWindow(windows, q.deviceZone, now)) return null;
  if (rollout.spec.missedWindow === 'on_connect' && rollout.startedAt !== null) {
    // The device's first window since the start has passed without it: it takes the update on connect.
    if (now >= firstWindowEnd(windows, q.deviceZone, rollout.startedAt)) return null;
  }
  return {
    reason: `outside its window (${windowZones(windows, q.deviceZone)})`,
    retryAfterSec: secondsUntil(nextOpening(windows, q.deviceZone, now), now),
  };
}
