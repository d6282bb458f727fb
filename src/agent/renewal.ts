/**
 * When to renew the device certificate: pure functions of its validity, the clock and the failures so far.
 * Renewing at two thirds of the validity (30 of 90 days left) leaves a device that is offline for weeks
 * time to come back and renew before the old certificate stops working.
 *
 * The validity counts from when the device received the certificate when that is later than its notBefore:
 * a CA back-dates certificates for devices whose clocks lag (FleetD's by five minutes), which would otherwise
 * make a short-lived certificate due for renewal the moment it arrives.
 */
import { Backoff, type Random } from './schedule.js';

export const DEFAULT_RENEW_AT = 2 / 3;

export interface Validity {
  notBefore: number;
  notAfter: number;
  /** When the device received (saved) the certificate. */
  receivedAt?: number | undefined;
}

/** The instant renewal is due: `fraction` of the way from notBefore (or receipt, if later) to notAfter. */
export function renewalDueAt(validity: Validity, fraction = DEFAULT_RENEW_AT): number {
  const received = validity.receivedAt ?? validity.notBefore;
  const start = Math.min(validity.notAfter, Math.max(validity.notBefore, received));
  return start + Math.floor((validity.notAfter - start) * fraction);
}

/** Tracks one certificate's renewal: due at its time, then retried with backoff until a renewal succeeds. */
export class RenewalSchedule {
  private dueAt: number;
  private readonly retry: Backoff;

  constructor(
    validity: Validity,
    private readonly fraction: number,
    random: Random,
  ) {
    this.dueAt = renewalDueAt(validity, fraction);
    // At most an hour between attempts: a failed renewal is retried long before the old certificate expires.
    this.retry = new Backoff(random, 3_600_000);
  }

  /** True when the certificate should be renewed now (due, and not backing off after a failure). */
  due(now: number): boolean {
    return now >= this.dueAt && this.retry.ready(now);
  }

  /** Milliseconds until `due` becomes true (0 when it is). */
  waitMs(now: number): number {
    return Math.max(0, this.dueAt - now, this.retry.waitMs(now));
  }

  failed(now: number): number {
    return this.retry.failed(now);
  }

  /** A new certificate: the next renewal is due at its own fraction. */
  renewed(validity: Validity): void {
    this.dueAt = renewalDueAt(validity, this.fraction);
    this.retry.succeeded();
  }
}
