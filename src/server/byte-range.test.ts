import { describe, expect, it } from 'vitest';
import { parseByteRange } from './byte-range.js';

describe('parseByteRange', () => {
  it('resumes from an offset to the end', () => {
    expect(parseByteRange('bytes=100-', 1000)).toEqual({ kind: 'partial', start: 100, end: 999 });
  });
  it('serves a closed range, clamped to the size', () => {
    expect(parseByteRange('bytes=0-99', 1000)).toEqual({ kind: 'partial', start: 0, end: 99 });
    expect(parseByteRange('bytes=900-5000', 1000)).toEqual({ kind: 'partial', start: 900, end: 999 });
  });
  it('serves a suffix', () => {
    expect(parseByteRange('bytes=-10', 1000)).toEqual({ kind: 'partial', start: 990, end: 999 });
    expect(parseByteRange('bytes=-5000', 1000)).toEqual({ kind: 'partial', start: 0, end: 999 });
  });
  it('refuses a range that starts past the end', () => {
    expect(parseByteRange('bytes=1000-', 1000)).toEqual({ kind: 'unsatisfiable' });
    expect(parseByteRange('bytes=-0', 1000)).toEqual({ kind: 'unsatisfiable' });
  });
  it('answers the whole body for what it does not handle', () => {
    expect(parseByteRange(undefined, 10)).toEqual({ kind: 'full' });
    expect(parseByteRange('bytes=0-1,5-6', 10)).toEqual({ kind: 'full' });
    expect(parseByteRange('items=0-1', 10)).toEqual({ kind: 'full' });
    expect(parseByteRange('bytes=5-2', 10)).toEqual({ kind: 'full' });
    expect(parseByteRange('bytes=-', 10)).toEqual({ kind: 'full' });
  });
});
