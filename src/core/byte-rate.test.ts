import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  formatByteRate,
  formatByteSize,
  parseByteRate,
  parseByteSize,
  tryParseByteRate,
  tryParseByteSize,
} from './byte-rate.js';

describe('byte rates and sizes', () => {
  it('reads decimal and binary units, forgiving their case', () => {
    expect(parseByteRate('100kB/s', 'r')).toBe(100_000);
    expect(parseByteRate('100KB/s', 'r')).toBe(100_000);
    expect(parseByteRate('512KiB/s', 'r')).toBe(524_288);
    expect(parseByteRate('1.5MB/s', 'r')).toBe(1_500_000);
    expect(parseByteRate('2 MiB / s', 'r')).toBe(2_097_152);
    expect(parseByteRate('5000B/s', 'r')).toBe(5_000);
    expect(parseByteSize('20MB', 's')).toBe(20_000_000);
    expect(parseByteSize('0B', 's')).toBe(0);
  });

  it('refuses what is not a rate, naming the field and showing examples', () => {
    expect(() => parseByteRate('100kbps', 'download_rate_limit')).toThrow(
      'download_rate_limit: "100kbps" is not a rate such as 100kB/s, 2MB/s or 512KiB/s',
    );
    expect(() => parseByteRate('100kB', 'download_rate_limit')).toThrow(/is not a rate/);
    expect(() => parseByteRate('100kbit/s', 'x')).toThrow(/is not a rate/);
    expect(() => parseByteRate('-5kB/s', 'x')).toThrow(/is not a rate/);
    expect(() => parseByteSize('lots', 'allow_metered')).toThrow(
      'allow_metered: "lots" is not a size such as 500kB, 20MB or 1GiB',
    );
  });

  it('refuses rates outside 1 kB/s to 10 GB/s and sizes over 1 TB', () => {
    expect(() => parseByteRate('0kB/s', 'r')).toThrow('r: "0kB/s" is outside 1kB/s to 10GB/s');
    expect(() => parseByteRate('999B/s', 'r')).toThrow(/outside/);
    expect(() => parseByteRate('11GB/s', 'r')).toThrow(/outside/);
    expect(() => parseByteSize('2000GB', 's')).toThrow('s: "2000GB" is more than 1000GB');
    expect(() => parseByteRate(`${'9'.repeat(100)}kB/s`, 'r')).toThrow(/^r: "9{32}…" is not a rate/);
  });

  it('writes the largest unit that divides exactly', () => {
    expect(formatByteRate(100_000)).toBe('100kB/s');
    expect(formatByteRate(524_288)).toBe('512KiB/s');
    expect(formatByteSize(1_500)).toBe('1500B');
    expect(formatByteSize(0)).toBe('0B');
  });

  it('any rate it writes reads back the same (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e12 }), (n) => {
        expect(tryParseByteSize(formatByteSize(n))).toBe(n);
        expect(tryParseByteRate(formatByteRate(n))).toBe(n);
      }),
    );
  });

  it('random text never crashes the parser (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (text) => {
        const r = tryParseByteRate(text);
        expect(r === undefined || (Number.isFinite(r) && r >= 0)).toBe(true);
      }),
    );
  });
});
