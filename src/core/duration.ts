import { FleetError } from './errors.js';

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/;

/** Parses "90s", "10m", "24h", "7d", "2w" into milliseconds; undefined when it is not a duration. */
export function tryParseDuration(text: string): number | undefined {
  const match = DURATION.exec(text.trim());
  if (!match) return undefined;
  return Math.round(Number(match[1]) * UNIT_MS[match[2]!]!);
}

export function parseDuration(text: string, field = 'duration'): number {
  const ms = tryParseDuration(text);
  if (ms === undefined) {
    throw new FleetError(
      'VALIDATION',
      `${field}: "${text}" is not a duration (expected e.g. 90s, 10m, 24h, 7d)`,
    );
  }
  return ms;
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
