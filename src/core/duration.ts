import { FleetError } from './errors.js';

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

const DAY_MS = 86_400_000;

/**
 * Upper bounds of durations: what a schema states and the parser enforces. Without them "99999999999999999999w"
 * became 6e28 ms, beyond any date and any bigint column, and a stored spec could not be read back.
 */
export const DURATION_LIMITS = {
  /** Any duration at all, CLI flags included: keeps every instant computed from one a valid date. */
  any: 3_650 * DAY_MS,
  /** A rollout's in-progress timeout. */
  timeout: 30 * DAY_MS,
  /** A rollout's retry backoff and max_backoff. */
  backoff: 7 * DAY_MS,
  /** A progressive phase's soak time. */
  wait: 90 * DAY_MS,
  /** An enrollment token's lifetime. */
  tokenExpiry: 365 * DAY_MS,
  /** How far back fleet history reaches. */
  history: 365 * DAY_MS,
} as const;

/** The longest duration text worth reading: "3650d" needs 5 characters, "315360000000ms" 14. */
export const MAX_DURATION_TEXT = 32;

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/;

/** Parses "90s", "10m", "24h", "7d", "2w" into milliseconds; undefined when it is not a duration. */
export function tryParseDuration(text: string): number | undefined {
  const match = DURATION.exec(text.trim());
  if (!match) return undefined;
  return Math.round(Number(match[1]) * UNIT_MS[match[2]!]!);
}

/** Parses a duration no longer than `maxMs` (default: DURATION_LIMITS.any); errors name `field`. */
export function parseDuration(text: string, field = 'duration', maxMs: number = DURATION_LIMITS.any): number {
  const ms = text.length > MAX_DURATION_TEXT ? undefined : tryParseDuration(text);
  if (ms === undefined) {
    const shown = text.length > MAX_DURATION_TEXT ? `${text.slice(0, MAX_DURATION_TEXT)}…` : text;
    throw new FleetError(
      'VALIDATION',
      `${field}: "${shown}" is not a duration (expected e.g. 90s, 10m, 24h, 7d)`,
      { field },
    );
  }
  if (ms > maxMs) {
    throw new FleetError(
      'VALIDATION',
      `${field}: "${text}" is longer than the maximum of ${durationBound(maxMs)}`,
      {
        field,
      },
    );
  }
  return ms;
}

/** A bound for messages and schema descriptions: 2 592 000 000 → "30d". */
export function durationBound(ms: number): string {
  for (const [unit, size] of [
    ['d', DAY_MS],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
  ] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** "2h 5m" style rendering for people. */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${ms}ms`;
  const parts: string[] = [];
  let rest = Math.round(ms / 1_000);
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3_600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) parts.push(`${n}${unit}`);
    rest -= n * size;
  }
  return parts.slice(0, 2).join(' ');
}
