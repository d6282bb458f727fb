import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { globToRegExp, hasWildcard } from './glob.js';

describe('globs', () => {
  it('matches * as any run and ? as one character, everything else literally', () => {
    const truck = globToRegExp('truck-*');
    expect(['truck-', 'truck-17', 'truck-a\nb'].every((s) => truck.test(s))).toBe(true);
    expect(truck.test('Truck-1')).toBe(false);
    expect(globToRegExp('a?c').test('abc')).toBe(true);
    expect(globToRegExp('a?c').test('ac')).toBe(false);
    expect(globToRegExp('a?c').test('a😀c')).toBe(true);
    expect(globToRegExp('a.(b)[c]+$^\\').test('a.(b)[c]+$^\\')).toBe(true);
    expect(globToRegExp('a.b').test('axb')).toBe(false);
    expect(globToRegExp('100%_x').test('100%_x')).toBe(true);
  });

  it('knows when a pattern has wildcards', () => {
    expect(hasWildcard('a*')).toBe(true);
    expect(hasWildcard('a?')).toBe(true);
    expect(hasWildcard('a%_')).toBe(false);
  });
});

describe('glob fuzz', () => {
  it('compiles any pattern, and a pattern without wildcards matches exactly itself', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (s) => {
        const re = globToRegExp(s);
        if (!hasWildcard(s)) expect(re.test(s)).toBe(true);
      }),
    );
  });
});
