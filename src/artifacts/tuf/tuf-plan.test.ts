import { describe, expect, it } from 'vitest';
import { DEFAULT_LIFETIMES, type PublicationState, planPublication } from './tuf-plan.js';

const H = 3_600_000;
const signers = { targets: 'kt', snapshot: 'ks', timestamp: 'kx' };
const fw = { 'fw@1.0.0': { length: 10, sha256: 'a'.repeat(64), custom: {} } };
const state = (now: number): PublicationState => ({
  targets: { version: 1, expiresMs: now + 90 * 24 * H, signedBy: ['kt'], targets: fw },
  snapshot: { version: 1, expiresMs: now + 7 * 24 * H, signedBy: ['ks'] },
  timestamp: { version: 1, expiresMs: now + 24 * H, signedBy: ['kx'] },
});

describe('planPublication', () => {
  it('signs all three roles the first time', () => {
    expect(planPublication({}, fw, signers, DEFAULT_LIFETIMES, 0)).toEqual({
      targets: true,
      snapshot: true,
      timestamp: true,
    });
  });

  it('signs nothing while every role has more than half its lifetime left and nothing changed', () => {
    expect(planPublication(state(0), fw, signers, DEFAULT_LIFETIMES, 11 * H)).toEqual({
      targets: false,
      snapshot: false,
      timestamp: false,
    });
  });

  it('re-signs only timestamp when half of its day is gone', () => {
    expect(planPublication(state(0), fw, signers, DEFAULT_LIFETIMES, 12 * H + 1)).toEqual({
      targets: false,
      snapshot: false,
      timestamp: true,
    });
  });

  it('a changed release carries up through snapshot and timestamp', () => {
    const changed = { 'fw@1.0.0': { length: 11, sha256: 'a'.repeat(64), custom: {} } };
    expect(planPublication(state(0), changed, signers, DEFAULT_LIFETIMES, 0)).toEqual({
      targets: true,
      snapshot: true,
      timestamp: true,
    });
  });

  it('a new snapshot key re-signs snapshot and timestamp, not targets', () => {
    expect(planPublication(state(0), fw, { ...signers, snapshot: 'new' }, DEFAULT_LIFETIMES, 0)).toEqual({
      targets: false,
      snapshot: true,
      timestamp: true,
    });
  });
});
