/**
 * A download's bandwidth rules, decided per device and rollout (docs/bandwidth.md): how fast it may go, and
 * whether a device on a metered link waits. Pure: the offer and the artifact route call it with what the
 * store read.
 *
 * The device's `download_rate_limit` tag wins over the rollout's field, either way: it is the operator's word
 * about that device's link (a cellular modem slower than the fleet's rule, a depot gateway on fibre faster), and
 * `unlimited` lifts the rollout's limit for it. A device is on a metered link when its `metered` tag says so
 * (the operator knows the contract) or its last heartbeat's `metered` metric does (the device sees the link).
 */
import { formatByteSize, parseByteRate, tryParseByteRate } from './byte-rate.js';
import { FleetError } from './errors.js';
import { budgetHoldReason, fitsBudget, type MeteredBudget, parseMeteredBudget } from './metered-budget.js';

export const RATE_TAG = 'download_rate_limit';
export const METERED_TAG = 'metered';
/** A device's own metered budget (`50MB/30d`): its contract, which wins over the rollout's `metered_budget`. */
export const METERED_BUDGET_TAG = 'metered_budget';
/** The heartbeat metric a device reports its link with: true or 1 is metered. */
export const METERED_METRIC = 'metered';
const UNLIMITED = 'unlimited';
const YES = new Set(['true', 'yes', '1']);
const NO = new Set(['false', 'no', '0']);

/** Bytes per second for a device's download: its tag if valid (`unlimited` = none), else the rollout's. */
export function downloadRateFor(
  rolloutLimit: number | null,
  tags: Readonly<Record<string, string>>,
): number | null {
  const tag = tags[RATE_TAG]?.trim();
  if (tag === undefined) return rolloutLimit;
  if (tag.toLowerCase() === UNLIMITED) return null;
  // Tags set before this rule, or by an import, are not checked: a bad one leaves the rollout's limit in force.
  return tryParseByteRate(tag) ?? rolloutLimit;
}

/** The metered budget a device downloads under: its tag if valid, else the rollout's (null: none). */
export function meteredBudgetFor(
  rolloutBudget: MeteredBudget | null,
  tags: Readonly<Record<string, string>>,
): MeteredBudget | null {
  const tag = tags[METERED_BUDGET_TAG];
  if (tag === undefined) return rolloutBudget;
  // As with the rate tag: one that came in unchecked (an import) leaves the rollout's budget in force.
  try {
    return parseMeteredBudget(tag, `tags.${METERED_BUDGET_TAG}`);
  } catch {
    return rolloutBudget;
  }
}

export function isMetered(
  tags: Readonly<Record<string, string>>,
  metrics: Readonly<Record<string, unknown>> | null,
): boolean {
  const tag = tags[METERED_TAG]?.trim().toLowerCase();
  if (tag !== undefined && YES.has(tag)) return true;
  if (tag !== undefined && NO.has(tag)) return false;
  const reported = metrics?.[METERED_METRIC];
  return (
    reported === true || reported === 1 || (typeof reported === 'string' && YES.has(reported.toLowerCase()))
  );
}

/** How long a held metered download waits before the device asks again: links change, but not every minute. */
export const METERED_HOLD_SEC = 900;

/** A rollout's metered budget (core/metered-budget.ts) with the bytes the device was granted this period. */
export interface BudgetUse {
  budget: MeteredBudget;
  used: number;
}

/**
 * Why a download waits for an unmetered link, or null when it may go: the rollout allows metered links
 * (`true`), or the release is no larger than the size it allows, and fits what is left of the device's metered
 * budget when the rollout has one. With a budget and no size, the budget alone decides.
 */
export function meteredHold(
  allowMetered: boolean | number,
  releaseSize: number,
  metered: boolean,
  budget: BudgetUse | null = null,
): { reason: string; retryAfterSec: number } | null {
  if (!metered || allowMetered === true) return null;
  const withinSize = typeof allowMetered === 'number' && releaseSize <= allowMetered;
  if (budget !== null && (withinSize || allowMetered === false)) {
    if (fitsBudget(budget.budget, budget.used, releaseSize)) return null;
    return {
      reason: budgetHoldReason(budget.budget, budget.used, releaseSize),
      retryAfterSec: METERED_HOLD_SEC,
    };
  }
  if (withinSize) return null;
  const allowance =
    allowMetered === false ? 'allows no download' : `allows up to ${formatByteSize(allowMetered)}`;
  return {
    reason: `metered connection: the release is ${formatByteSize(releaseSize)} and the rollout ${allowance} on a metered link`,
    retryAfterSec: METERED_HOLD_SEC,
  };
}

/** Refuses a bandwidth tag an operator sets that the offer could not read (checked with every tag edit). */
export function checkBandwidthTags(set: Readonly<Record<string, string>>): void {
  const rate = set[RATE_TAG];
  if (rate !== undefined && rate.trim().toLowerCase() !== UNLIMITED) parseByteRate(rate, `tags.${RATE_TAG}`);
  const budget = set[METERED_BUDGET_TAG];
  if (budget !== undefined) parseMeteredBudget(budget, `tags.${METERED_BUDGET_TAG}`);
  const metered = set[METERED_TAG];
  if (
    metered !== undefined &&
    !YES.has(metered.trim().toLowerCase()) &&
    !NO.has(metered.trim().toLowerCase())
  ) {
    throw new FleetError('VALIDATION', `tags.${METERED_TAG}: "${metered}" must be true or false`, {
      field: `tags.${METERED_TAG}`,
    });
  }
}
