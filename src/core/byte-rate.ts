/**
 * Byte sizes and byte rates as people write them in a rollout spec or a device tag: "100kB/s", "2MB/s",
 * "512KiB/s", "20MB". Decimal units are powers of 1000 (kB, MB, GB), binary ones powers of 1024 (KiB, MiB,
 * GiB); the unit's case is forgiven (100KB/s is 100 kB/s) but not its meaning. Bits are not accepted: a
 * rate in bits read as bytes would be eight times off.
 */
import { FleetError } from './errors.js';

const UNIT_BYTES: Record<string, number> = {
  b: 1,
  kb: 1_000,
  mb: 1_000_000,
  gb: 1_000_000_000,
  kib: 1_024,
  mib: 1_048_576,
  gib: 1_073_741_824,
};

/** The bounds a rate may take: below 1 kB/s no download finishes, above 10 GB/s no link carries it. */
export const RATE_LIMITS = { min: 1_000, max: 10_000_000_000 } as const;
/** The largest size worth stating (1 TB): more than any artifact FleetD stores. */
export const MAX_SIZE = 1_000_000_000_000;
/** The longest text worth reading: "1.25GiB/s" is 9 characters. */
export const MAX_RATE_TEXT = 32;

const SIZE = /^(\d+(?:\.\d+)?)\s*([kmg]i?b|b)$/i;

/** "20MB" → 20 000 000; undefined when the text is not a size. */
export function tryParseByteSize(text: string): number | undefined {
  if (text.length > MAX_RATE_TEXT) return undefined;
  const match = SIZE.exec(text.trim());
  if (!match) return undefined;
  return Math.round(Number(match[1]) * UNIT_BYTES[match[2]!.toLowerCase()]!);
}

/** "100kB/s" → 100 000 bytes per second; undefined when the text is not a rate. */
export function tryParseByteRate(text: string): number | undefined {
  const match = /^(.*?)\s*\/\s*s$/i.exec(text.trim());
  return match ? tryParseByteSize(match[1]!) : undefined;
}

const shown = (text: string) => (text.length > MAX_RATE_TEXT ? `${text.slice(0, MAX_RATE_TEXT)}…` : text);

/** A rate within RATE_LIMITS, in bytes per second; errors name `field`. */
export function parseByteRate(text: string, field: string): number {
  const rate = tryParseByteRate(text);
  if (rate === undefined) {
    throw new FleetError(
      'VALIDATION',
      `${field}: "${shown(text)}" is not a rate such as 100kB/s, 2MB/s or 512KiB/s`,
      { field },
    );
  }
  if (rate < RATE_LIMITS.min || rate > RATE_LIMITS.max) {
    throw new FleetError(
      'VALIDATION',
      `${field}: "${shown(text)}" is outside ${formatByteRate(RATE_LIMITS.min)} to ${formatByteRate(RATE_LIMITS.max)}`,
      { field },
    );
  }
  return rate;
}

/** A size from 0 to MAX_SIZE, in bytes; errors name `field`. */
export function parseByteSize(text: string, field: string): number {
  const size = tryParseByteSize(text);
  if (size === undefined) {
    throw new FleetError(
      'VALIDATION',
      `${field}: "${shown(text)}" is not a size such as 500kB, 20MB or 1GiB`,
      {
        field,
      },
    );
  }
  if (size > MAX_SIZE) {
    throw new FleetError(
      'VALIDATION',
      `${field}: "${shown(text)}" is more than ${formatByteSize(MAX_SIZE)}`,
      {
        field,
      },
    );
  }
  return size;
}

const FORMAT_UNITS: Array<[string, number]> = [
  ['GB', 1_000_000_000],
  ['GiB', 1_073_741_824],
  ['MB', 1_000_000],
  ['MiB', 1_048_576],
  ['kB', 1_000],
  ['KiB', 1_024],
];

/** The largest unit that divides exactly: 100 000 → "100kB", 524 288 → "512KiB", 1 500 → "1500B". */
export function formatByteSize(bytes: number): string {
  for (const [unit, size] of FORMAT_UNITS)
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  return `${bytes}B`;
}

export function formatByteRate(bytesPerSec: number): string {
  return `${formatByteSize(bytesPerSec)}/s`;
}
