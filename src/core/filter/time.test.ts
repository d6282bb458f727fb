import { describe, expect, it } from 'vitest';
import { parseInstant } from './time.js';

describe('parseInstant', () => {
  it('reads dates as UTC midnight and instants with their zone', () => {
    expect(parseInstant('2024-10-20')).toEqual({ ms: Date.UTC(2024, 9, 20), dateOnly: true });
    expect(parseInstant('2024-10-20T14:00:00Z')).toEqual({ ms: Date.UTC(2024, 9, 20, 14), dateOnly: false });
    expect(parseInstant('2024-10-20T14:00Z')?.ms).toBe(Date.UTC(2024, 9, 20, 14));
    expect(parseInstant('2024-10-20T14:00:00.25+02:00')?.ms).toBe(Date.UTC(2024, 9, 20, 12, 0, 0, 250));
    expect(parseInstant('2024-10-20t14:00:00-05:30')?.ms).toBe(Date.UTC(2024, 9, 20, 19, 30));
    expect(parseInstant('2024-02-29')?.ms).toBe(Date.UTC(2024, 1, 29));
    expect(parseInstant('0050-01-01')?.ms).toBe(Date.parse('0050-01-01T00:00:00Z'));
  });

  it.each([
    '2024-10-20T14:00:00',
    '2023-02-29',
    '2024-13-01',
    '2024-04-31',
    '2024-10-20T24:00Z',
    '2024-10-20T14:60Z',
    '2024-10-20T14:00+24:00',
    '20241020',
    '2024-1-2',
    'yesterday',
  ])('refuses %j', (text) => {
    expect(parseInstant(text)).toBeUndefined();
  });
});
