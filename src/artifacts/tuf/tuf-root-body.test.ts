import { describe, expect, it } from 'vitest';
import { rootBodyText } from './tuf-root.js';

describe('rootBodyText', () => {
  it('gives a body as JSON text, and refuses one nested deeper than JSON.stringify can walk as a 400', () => {
    expect(rootBodyText({ signed: { version: 2 } })).toBe('{"signed":{"version":2}}');
    // The fuzz suite's counterexample: 10,000 nested objects (the route's answer was a 500).
    const deep: Record<string, unknown> = {};
    let at = deep;
    for (let i = 0; i < 10_000; i++) {
      const next: Record<string, unknown> = {};
      at.a = next;
      at = next;
    }
    expect(() => rootBodyText(deep)).toThrow(
      expect.objectContaining({
        code: 'VALIDATION',
        message: 'the body is not TUF root metadata (nested too deeply)',
      }),
    );
  });
});
