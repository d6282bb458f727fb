/**
 * A device's deferral of an offered soft update (its consent hook said "not now"), within the budget of the
 * rollout's `deferral` policy: at most `max_count` deferrals, none reaching past `max_total` after the first
 * (hawkBit's time-forced action). Once the budget is spent the update is forced: it is offered without its
 * soft flag and installs in the device's next window. Pure: the caller reads the record and writes the result.
 */
import { FleetError } from '../errors.js';
import type { DeferralPolicy } from './spec.js';

/** How long a deferral lasts when the device does not say. */
export const DEFAULT_DEFERRAL_MS = 3_600_000;
/** The longest one deferral a device may ask for (the budget may cut it further). */
export const DEVICE_DEFERRAL_MAX_MS = 7 * 86_400_000;

export interface DeferralRecord {
  count: number;
  /** The first deferral: `max_total` is counted from here. */
  firstAt: number;
  deferredUntil: number;
}

export interface DeferralBudget {
  /** Deferrals the device may still make (null: not counted). */
  countLeft: number | null;
  /** The latest instant a deferral may reach (null: not bounded). */
  latest: number | null;
}

/** What is left of the budget; the first deferral's instant is `now` when there was none. */
export function deferralBudget(
  policy: DeferralPolicy,
  record: DeferralRecord | null,
  now: number,
): DeferralBudget {
  const firstAt = record?.firstAt ?? now;
  return {
    countLeft: policy.maxCount === null ? null : Math.max(0, policy.maxCount - (record?.count ?? 0)),
    latest: policy.maxTotalMs === null ? null : firstAt + policy.maxTotalMs,
  };
}

/** Whether the device may defer the update no more: it is forced from now on. */
export function deferralSpent(
  policy: DeferralPolicy | null,
  record: DeferralRecord | null,
  now: number,
): boolean {
  if (policy === null) return true;
  const budget = deferralBudget(policy, record, now);
  return budget.countLeft === 0 || (budget.latest !== null && now >= budget.latest);
}

/** Whether an offered update is held by a deferral still running. */
export const deferredAt = (record: DeferralRecord | null, now: number): boolean =>
  record !== null && now < record.deferredUntil;

/**
 * The record after one more deferral of `forMs`, cut to what the budget leaves. Throws CONFLICT (409) when the
 * rollout allows no deferral or the budget is spent: the device must install.
 */
export function defer(
  policy: DeferralPolicy | null,
  record: DeferralRecord | null,
  forMs: number,
  now: number,
): DeferralRecord {
  if (policy === null) {
    throw new FleetError('CONFLICT', 'this update cannot be deferred: its rollout has no deferral budget', {
      reason: 'not_deferrable',
    });
  }
  if (deferralSpent(policy, record, now)) {
    const count = record?.count ?? 0;
    throw new FleetError(
      'CONFLICT',
      `deferral budget spent (${count} deferral${count === 1 ? '' : 's'} made): the update is forced and installs in the next window`,
      { reason: 'budget_spent', count },
    );
  }
  const { latest } = deferralBudget(policy, record, now);
  const until = Math.min(now + forMs, latest ?? Number.POSITIVE_INFINITY);
  return { count: (record?.count ?? 0) + 1, firstAt: record?.firstAt ?? now, deferredUntil: until };
}
