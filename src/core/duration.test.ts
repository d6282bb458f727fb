import { describe, expect, it } from 'vitest';
import {
  DURATION_LIMITS,
  durationBound,
  formatDuration,
  parseDuration,
  tryParseDuration,
} from './duration.js';

describe('durations', () => {
  it('parses every unit', () => {
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('10m')).toBe(600_000);
    expect(parseDuration('24h')).toBe(86_400_000);
    expect(parseDuration('7d')).toBe(604_800_000);
    expect(parseDuration('2w')).toBe(1_209_600_000);
    expect(parseDuration('1.5h')).toBe(5_400_000);
  });
  it('names the field when the text is not a duration', () => {
    expect(() => parseDuration('7 days', '--expires')).toThrow(/--expires: "7 days" is not a duration/);
    expect(tryParseDuration('-5m')).toBeUndefined();
  });
  it('renders for people', () => {
    expect(formatDuration(90_061_000)).toBe('1d 1h');
    expect(formatDuration(61_000)).toBe('1m 1s');
  });
  it('refuses a duration beyond its bound, naming the field and the bound', () => {
    expect(parseDuration('365d', 'expires_in', DURATION_LIMITS.tokenExpiry)).toBe(365 * 86_400_000);
    expect(() => parseDuration('15000000w', 'expires_in', DURATION_LIMITS.tokenExpiry)).toThrow(
      'expires_in: "15000000w" is longer than the maximum of 365d',
    );
    expect(() => parseDuration('99999999999999999999w')).toThrow(/longer than the maximum of 3650d/);
  });
  it('refuses a text too long to be a sensible duration without echoing all of it', () => {
    expect(() => parseDuration(`${'9'.repeat(1000)}s`, 'since')).toThrow(
      /^since: "9{32}…" is not a duration/,
    );
  });
  it('states bounds in the largest whole unit', () => {
    expect(durationBound(DURATION_LIMITS.timeout)).toBe('30d');
    expect(durationBound(90 * 60_000)).toBe('90m');
  });
});
