import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration, tryParseDuration } from './duration.js';

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
});
