/**
 * Which devices of a rollout to wake: those the offer would let start now. A wake that the offer then answers
 * with a hold costs a device a heartbeat for nothing, and a fleet woken all at once for ten slots is a
 * thundering herd, so updates are woken only as far as free download slots go; switches and rollbacks
 * download nothing and need no slot.
 */
import { holdFor, type OfferQuestion, type UpdatePurpose } from './offer.js';
import { type MaintenanceWindow, nextWindowStart } from './window.js';

export interface WakeCandidate {
  id: string;
  deviceId: string;
  phase: number;
  purpose: UpdatePurpose;
  notBefore: number | null;
  deviceZone: string | null;
}

/**
 * The candidates to wake now, in the order given: every one the offer would not hold, updates only while
 * `slots` last. Returns the devices and the slots left.
 */
export function devicesReady(
  rollout: OfferQuestion['rollout'],
  candidates: readonly WakeCandidate[],
  now: number,
  slots: number,
): { wake: WakeCandidate[]; slotsLeft: number } {
  const wake: WakeCandidate[] = [];
  let left = slots;
  for (const c of candidates) {
    const update = { phase: c.phase, notBefore: c.notBefore, purpose: c.purpose };
    if (holdFor({ rollout, update, deviceZone: c.deviceZone, now }) !== null) continue;
    if (c.purpose === 'update') {
      if (left <= 0) continue;
      left--;
    }
    wake.push(c);
  }
  return { wake, slotsLeft: left };
}

/** Whether the window opened in `zone` after `from`, up to `to` included. */
export function windowOpened(window: MaintenanceWindow, zone: string, from: number, to: number): boolean {
  if (to <= from) return false;
  try {
    return nextWindowStart(window, zone, from + 1) <= to;
  } catch {
    return false; // a window that never opens (its cron matches no date) wakes nobody
  }
}
