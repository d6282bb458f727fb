import { describe, expect, it } from 'vitest';
import { findUnstorable } from './unstorable.js';

describe('findUnstorable', () => {
  it('finds a NUL in a nested string and names its path', () => {
    expect(findUnstorable({ a: [{ b: 'x' }, { c: 'y\u0000' }] })).toEqual({
      path: '/a/1/c',
      problem: 'must not contain a NUL character (\\u0000)',
    });
  });
  it('finds a NUL in an object key', () => {
    expect(findUnstorable({ tags: { 'k\u0000/': 'v' } })?.path).toBe('/tags/k\u0000~1');
  });
  it('finds numbers that are not finite', () => {
    expect(findUnstorable({ limit: Number.POSITIVE_INFINITY })).toEqual({
      path: '/limit',
      problem: 'must be a finite number',
    });
    expect(findUnstorable([Number.NaN])?.path).toBe('/0');
  });
  it('accepts ordinary values, a backslash-u-0000 text included', () => {
    expect(findUnstorable({ a: 'a\\u0000b', n: 1e300, b: true, z: null, list: [1, 'x'] })).toBeUndefined();
  });
  it('walks deep nesting without recursion', () => {
    let deep: unknown = 'ok';
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(findUnstorable(deep)).toBeUndefined();
  });
});
