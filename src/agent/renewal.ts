/**
 * When to renew the device certificate: pure functions of its validity, the clock and the failures so far.
 * Renewing at two thirds of the validity (30 of 90 days left) leaves a device that is offline for weeks
 * time to come back and renew before the old certificate stops working.
 */
import { Backoff, type Random } from './schedule.js';

export const DEFAULT_RENEW_AT = 2 / 3;

/** The instant renewal is due: `fraction` of the way from notBefore to notAfter. */
export function renewalDueAt(
  validity: { notBefore: number; notAfter: number },
  fraction = DEFAULT_RENEW_AT,
): number {
  return validity.notBefore + Math.floor((validity.notAfter - validity.notBefore) * fraction);
}

/** Tracks one certificate's renewal: due at its time, then retried with backoff until a renewal succeeds. */
export class RenewalSchedule {
  private dueAt: number;
  private readonly retry: Backoff;

  constructor(
    validity: { notBefore: number; notAfter: number },
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
  renewed(validity: { notBefore: number; notAfter: number }): void {
    this.dueAt = renewalDueAt(validity, this.fraction);
    this.retry.succeeded();
  }
}
