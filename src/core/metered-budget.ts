/**
 * A rollout's byte budget for metered links (`metered_budget: 50MB/30d`, docs/bandwidth.md): a device on a
 * metered link may download while the bytes it was granted over metered links in the last period, plus this
 * release, fit in the budget. The period is a rolling window ending now, not a calendar month: whatever day a
 * contract's month starts on, a window as long as the longest month (31d) never lets more than the budget
 * through within it. Pure: the offer reads the device's metered bytes and records each download it grants.
 */
import { formatByteSize, MAX_RATE_TEXT, MAX_SIZE, tryParseByteSize } from './byte-rate.js';
import { durationBound, tryParseDuration } from './duration.js';
import { FleetError } from './errors.js';

export interface MeteredBudget {
  bytes: number;
  periodMs: number;
}

const HOUR_MS = 3_600_000;
/** A period from an hour (a test contract, a daily cap split) to a year: longer means no budget at all. */
export const BUDGET_PERIOD_LIMITS = { min: HOUR_MS, max: 366 * 24 * HOUR_MS } as const;
/** The least budget worth stating: below 1 kB no release fits. */
export const MIN_BUDGET_BYTES = 1_000;

const EXAMPLE = 'a budget such as 50MB/30d (a size, a slash, a period)';

const fail = (field: string, message: string): never => {
  throw new FleetError('VALIDATION', `${field}: ${message}`, { field });
};

/** "50MB/30d" → 50 MB per rolling 30 days; errors name `field`. */
export function parseMeteredBudget(text: string, field: string): MeteredBudget {
  const shown = text.length > MAX_RATE_TEXT ? `${text.slice(0, MAX_RATE_TEXT)}…` : text;
  const slash = text.lastIndexOf('/');
  if (text.length > MAX_RATE_TEXT || slash < 0) fail(field, `"${shown}" is not ${EXAMPLE}`);
  const bytes = tryParseByteSize(text.slice(0, slash));
  const periodMs = tryParseDuration(text.slice(slash + 1).trim());
  if (bytes === undefined || periodMs === undefined) fail(field, `"${shown}" is not ${EXAMPLE}`);
  if (bytes! < MIN_BUDGET_BYTES || bytes! > MAX_SIZE) {
    fail(
      field,
      `"${shown}": the size must lie between ${formatByteSize(MIN_BUDGET_BYTES)} and ${formatByteSize(MAX_SIZE)}`,
    );
  }
  if (periodMs! < BUDGET_PERIOD_LIMITS.min || periodMs! > BUDGET_PERIOD_LIMITS.max) {
    fail(
      field,
      `"${shown}": the period must lie between ${durationBound(BUDGET_PERIOD_LIMITS.min)} and ${durationBound(BUDGET_PERIOD_LIMITS.max)}`,
    );
  }
  return { bytes: bytes!, periodMs: periodMs! };
}

export function formatMeteredBudget(budget: MeteredBudget): string {
  return `${formatByteSize(budget.bytes)}/${durationBound(budget.periodMs)}`;
}

/** Whether a download of `size` bytes fits the budget with `used` bytes granted over metered links this period. */
export function fitsBudget(budget: MeteredBudget, used: number, size: number): boolean {
  return used + size <= budget.bytes;
}

/** The hold reason of a metered device whose download would overrun its budget. */
export function budgetHoldReason(budget: MeteredBudget, used: number, size: number): string {
  return (
    `metered connection: the release is ${formatByteSize(size)} and ${formatByteSize(used)} of the ` +
    `${formatMeteredBudget(budget)} metered budget is used`
  );
}
