/**
 * The normalized spec written back as a document (YAML/JSON/API form) with every default spelled out:
 * what the API returns and the store keeps, and what `parseRolloutSpec` reads back to the same spec.
 */
import { formatByteRate, formatByteSize } from '../byte-rate.js';
import { FleetError } from '../errors.js';
import { formatMeteredBudget } from '../metered-budget.js';
import type { RatePolicy } from './dispatch.js';
import type { HealthPolicy } from './health-gate.js';
import {
  DEVICE_DEFINED,
  parseRolloutSpec,
  type RolloutSpec,
  type RolloutSpecInput,
  STORED_LIMITS,
  type WindowInput,
} from './spec.js';
import type { MaintenanceWindow } from './window.js';

const UNITS: Array<[string, number]> = [
  ['w', 604_800_000],
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1_000],
];

/** The largest unit that divides exactly: 86 400 000 → "1d", 5 400 000 → "90m", 0 → "0s". */
export function durationText(ms: number): string {
  if (ms === 0) return '0s';
  for (const [unit, size] of UNITS) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

const hhmm = (minutes: number) =>
  `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
const iso = (ms: number) => new Date(ms).toISOString();

function healthDocument(
  h: HealthPolicy,
): NonNullable<NonNullable<RolloutSpecInput['phases']>[number]['health']> {
  return {
    soak: durationText(h.soakMs),
    ...(h.darkAfterMs !== null ? { dark_after: durationText(h.darkAfterMs) } : {}),
    ...(h.maxReboots !== null ? { max_reboots: h.maxReboots } : {}),
    ...(h.maxAppCrashes !== null ? { max_app_crashes: h.maxAppCrashes } : {}),
    ...(h.crashRateMargin !== null ? { crash_rate_margin: h.crashRateMargin } : {}),
  };
}

export function toRolloutDocument(spec: RolloutSpec): RolloutSpecInput {
  const doc: RolloutSpecInput = {
    name: spec.name,
    release: spec.release,
    filter: spec.filter,
    strategy: spec.strategy,
  };
  if (spec.phases.length > 0) {
    doc.phases = spec.phases.map((p) => ({
      name: p.name,
      percentage: p.percentage,
      wait: durationText(p.waitMs),
      success_rate: p.successRate,
      approval: p.approval,
      quorum: p.quorum,
      ...(p.maxConcurrent === null ? {} : { max_concurrent: p.maxConcurrent }),
      ...(p.rate === null ? {} : { rate: rateDocument(p.rate) }),
      ...(p.health ? { health: healthDocument(p.health) } : {}),
    }));
  }
  const w = spec.window;
  if (spec.deviceWindows) {
    doc.window = DEVICE_DEFINED;
    if (w) doc.fallback_window = windowDocument(w);
  } else if (w) doc.window = windowDocument(w);
  if (spec.deferral) {
    doc.deferral = {
      ...(spec.deferral.maxCount === null ? {} : { max_count: spec.deferral.maxCount }),
      ...(spec.deferral.maxTotalMs === null ? {} : { max_total: durationText(spec.deferral.maxTotalMs) }),
    };
  }
  if (spec.scheduledAt !== null) doc.scheduled_at = iso(spec.scheduledAt);
  doc.max_concurrent = spec.maxConcurrent;
  if (spec.maxConcurrentPer) doc.max_concurrent_per = { ...spec.maxConcurrentPer };
  if (spec.batchSize !== null) doc.batch_size = spec.batchSize;
  if (spec.rate) doc.rate = rateDocument(spec.rate);
  doc.retry = {
    attempts: spec.retry.attempts,
    backoff: durationText(spec.retry.backoffMs),
    factor: spec.retry.factor,
    max_backoff: durationText(spec.retry.maxBackoffMs),
  };
  doc.timeout = durationText(spec.timeoutMs);
  if (spec.abort) doc.abort = { failure_rate: spec.abort.failureRate, min_finished: spec.abort.minFinished };
  if (spec.endAt !== null) {
    doc.end_at = iso(spec.endAt);
    doc.end_action = spec.endAction;
  }
  doc.offline = spec.offline;
  doc.missed_window = spec.missedWindow;
  doc.rollback_on_halt = spec.rollbackOnHalt;
  doc.action = spec.action;
  if (spec.switchAt !== null) doc.switch_at = spec.switchAt;
  doc.seed = spec.seed;
  doc.overlap = spec.overlap;
  doc.priority = spec.priority;
  if (spec.downloadRateLimit !== null) doc.download_rate_limit = formatByteRate(spec.downloadRateLimit);
  if (spec.allowMetered !== false)
    doc.allow_metered = spec.allowMetered === true ? true : formatByteSize(spec.allowMetered);
  if (spec.adoptTuf) doc.adopt_tuf = true;
  if (spec.meteredBudget !== null) doc.metered_budget = formatMeteredBudget(spec.meteredBudget);
  return doc;
}

/** A window in the spec's document form (also a device's own windows). */
export function windowDocument(w: MaintenanceWindow): WindowInput {
  return w.cron === null
    ? { start: hhmm(w.start), end: hhmm(w.end), days: [...w.days], timezone: w.timezone }
    : {
        cron: w.cron,
        duration: durationText(((w.end - w.start + 1440) % 1440 || 1440) * 60_000),
        timezone: w.timezone,
      };
}

function rateDocument(rate: RatePolicy): NonNullable<RolloutSpecInput['rate']> {
  const doc: NonNullable<RolloutSpecInput['rate']> = {
    per_minute: rate.perMinute,
    growth_factor: rate.growthFactor,
  };
  if (rate.afterSuccesses !== null) doc.after_successes = rate.afterSuccesses;
  if (rate.maxPerMinute !== null) doc.max_per_minute = rate.maxPerMinute;
  return doc;
}

/**
 * The text a rollout's spec is stored as, checked to read back to the same document. Called before anything
 * is written: a spec whose document the parser would refuse (once "6.048e+28ms") must never be committed,
 * or every later read of the rollout fails.
 */
export function storedSpecText(spec: RolloutSpec): string {
  const text = JSON.stringify(toRolloutDocument(spec));
  const again = JSON.stringify(toRolloutDocument(parseRolloutSpec(JSON.parse(text), STORED_LIMITS)));
  if (again !== text) {
    throw new FleetError('INTERNAL', `spec: the stored document would not read back the same (${again})`);
  }
  return text;
}
