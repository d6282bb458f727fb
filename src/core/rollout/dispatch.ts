/**
 * Slot allocation: the server bounds how many devices download at once by handing out slots, never by
 * hoping (DESIGN principle 4). Pure: the engine passes in what is in progress and what was offered.
 */

export interface RatePolicy {
  /** Devices offered a slot per clock minute. */
  perMinute: number;
  /** Multiply the rate by this after every `afterSuccesses` successes (1 = steady). */
  growthFactor: number;
  afterSuccesses: number | null;
  /** Ceiling for the grown rate; null = none. */
  maxPerMinute: number | null;
}

export interface RetryPolicy {
  /** Tries in total, the first included; the device is failed when they are spent. */
  attempts: number;
  backoffMs: number;
  factor: number;
  maxBackoffMs: number;
}

/** Devices without a value for the `max_concurrent_per` tag share this bucket: unknown is not unlimited. */
export const NO_TAG_VALUE = '';

export interface SlotCandidate {
  id: string;
  /** The device's value of the `max_concurrent_per` tag. */
  tagValue?: string | null;
}

export interface SlotRequest {
  /** Devices asking to start now, in priority order (the engine decides it: phase, then waiting time). */
  candidates: readonly SlotCandidate[];
  /** Devices holding a slot now, overall and per tag value. */
  inProgress: number;
  inProgressPer?: Readonly<Record<string, number>>;
  maxConcurrent: number;
  maxConcurrentPer?: { limit: number } | null;
  rate?: RatePolicy | null;
  /** Successes so far in the rollout, for the rate's growth. */
  succeeded?: number;
  /** Slots handed out since the start of the current clock minute (⌊now / 60 000⌋). */
  offeredThisMinute?: number;
  now: number;
  /** Hint for devices turned away because slots are full (default 60 s); later queue positions get multiples. */
  busyRetrySec?: number;
  /** No hint is longer than this (default 900 s), so a device never sleeps through freed capacity for long. */
  maxRetryAfterSec?: number;
}

export type DeferReason = 'max_concurrent' | 'max_concurrent_per' | 'rate';

export interface SlotDecision {
  granted: string[];
  deferred: Array<{ id: string; reason: DeferReason; retryAfterSec: number }>;
}

/** The grown rate: perMinute × growthFactor^⌊succeeded / afterSuccesses⌋, capped, whole devices. */
export function currentRate(rate: RatePolicy, succeeded: number): number {
  const steps = rate.afterSuccesses ? Math.floor(succeeded / rate.afterSuccesses) : 0;
  const grown = rate.perMinute * rate.growthFactor ** Math.min(steps, 1000);
  return Math.max(1, Math.floor(Math.min(grown, rate.maxPerMinute ?? Number.MAX_SAFE_INTEGER)));
}

/**
 * Hands out slots to candidates in order while the overall limit, the limit for the candidate's tag
 * value and the minute's rate allow; a candidate blocked only by its tag's limit does not block others.
 * Turned-away devices get a hint spread by their place in the queue, so they do not all ask at once:
 * - slots full: busyRetrySec × (1 + ⌊place / limit⌋), as roughly `limit` slots free per busy period;
 * - rate spent: the seconds to the next minute plus one minute per `rate` devices ahead.
 */
export function allocateSlots(req: SlotRequest): SlotDecision {
  const busy = req.busyRetrySec ?? 60;
  const cap = req.maxRetryAfterSec ?? 900;
  const perLimit = req.maxConcurrentPer?.limit ?? null;
  const rate = req.rate ? currentRate(req.rate, req.succeeded ?? 0) : null;
  const secondsToNextMinute = Math.max(
    1,
    Math.ceil((60_000 - (((req.now % 60_000) + 60_000) % 60_000)) / 1000),
  );

  let running = req.inProgress;
  let offered = req.offeredThisMinute ?? 0;
  const perRunning = new Map(Object.entries(req.inProgressPer ?? {}));
  const queued = { overall: 0, rate: 0, per: new Map<string, number>() };
  const decision: SlotDecision = { granted: [], deferred: [] };
  const defer = (id: string, reason: DeferReason, sec: number) =>
    decision.deferred.push({ id, reason, retryAfterSec: Math.min(cap, Math.max(1, Math.ceil(sec))) });

  for (const c of req.candidates) {
    const tag = c.tagValue ?? NO_TAG_VALUE;
    if (running >= req.maxConcurrent) {
      defer(c.id, 'max_concurrent', busy * (1 + Math.floor(queued.overall++ / req.maxConcurrent)));
    } else if (perLimit !== null && (perRunning.get(tag) ?? 0) >= perLimit) {
      const place = queued.per.get(tag) ?? 0;
      queued.per.set(tag, place + 1);
      defer(c.id, 'max_concurrent_per', busy * (1 + Math.floor(place / perLimit)));
    } else if (rate !== null && offered >= rate) {
      defer(c.id, 'rate', secondsToNextMinute + 60 * Math.floor(queued.rate++ / rate));
    } else {
      decision.granted.push(c.id);
      running++;
      offered++;
      perRunning.set(tag, (perRunning.get(tag) ?? 0) + 1);
    }
  }
  return decision;
}

/** Backoff before retry number `attempt` (1 = after the first failure): backoff × factor^(attempt−1), capped. */
export function retryDelay(attempt: number, policy: RetryPolicy): number {
  const exponent = Math.min(Math.max(0, attempt - 1), 64);
  return Math.min(policy.maxBackoffMs, policy.backoffMs * policy.factor ** exponent);
}

/** After a failure: retry at a later instant, or give up (mark the device failed) when attempts are spent. */
export function afterFailure(
  failedAttempts: number,
  failedAt: number,
  policy: RetryPolicy,
): { kind: 'retry'; at: number } | { kind: 'give_up' } {
  if (failedAttempts >= policy.attempts) return { kind: 'give_up' };
  return { kind: 'retry', at: failedAt + retryDelay(failedAttempts, policy) };
}

/** The reason an update the engine timed out carries (its error and its event's reason). */
export const TIMED_OUT_REASON = 'timed out in progress';

/** An in-progress update that has run `timeoutMs` without a final report is timed out (its slot is freed). */
export function isTimedOut(startedAt: number, now: number, timeoutMs: number): boolean {
  return now - startedAt >= timeoutMs;
}
