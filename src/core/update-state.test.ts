import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  allowedFrom,
  checkTransition,
  FINAL_STATES,
  isAllowed,
  movableFrom,
  OPEN_STATES,
  UPDATE_STATES,
  type UpdateState,
} from './update-state.js';

describe('device update transitions', () => {
  it('follows the happy path', () => {
    const path: UpdateState[] = [
      'pending',
      'notified',
      'downloading',
      'installing',
      'verifying',
      'succeeded',
    ];
    for (let i = 1; i < path.length; i++) expect(isAllowed(path[i - 1]!, path[i]!)).toBe(true);
  });
  it('accepts progress reports while downloading, and skips ahead on the path', () => {
    expect(isAllowed('downloading', 'downloading')).toBe(true);
    expect(isAllowed('notified', 'installing')).toBe(true);
    expect(isAllowed('scheduled', 'notified')).toBe(true);
  });
  it('never goes backwards on the path', () => {
    expect(isAllowed('installing', 'downloading')).toBe(false);
    expect(isAllowed('succeeded', 'verifying')).toBe(false);
    expect(() => checkTransition('succeeded', 'downloading')).toThrow(
      /cannot go from succeeded to downloading/,
    );
  });
  it('rolls back only what was installed', () => {
    expect(isAllowed('verifying', 'rolled_back')).toBe(true);
    expect(isAllowed('succeeded', 'rolled_back')).toBe(true);
    expect(isAllowed('downloading', 'rolled_back')).toBe(false);
  });
  it('does not cancel a device in the middle of installing', () => {
    expect(isAllowed('installing', 'cancelled')).toBe(false);
    expect(isAllowed('downloading', 'cancelled')).toBe(true);
  });
  it('a failed update may only be retried', () => {
    for (const to of UPDATE_STATES) expect(isAllowed('failed', to)).toBe(to === 'pending');
  });
  it('no random sequence of accepted transitions leaves a final state except by the allowed exits', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...UPDATE_STATES), { maxLength: 30 }), (steps) => {
        let state: UpdateState = 'pending';
        for (const next of steps) {
          if (!isAllowed(state, next)) continue;
          if (FINAL_STATES.has(state)) {
            expect(
              (state === 'failed' && next === 'pending') || (state === 'succeeded' && next === 'rolled_back'),
            ).toBe(true);
          }
          state = next;
        }
      }),
    );
  });
  it('bulk moves take their from-states from the table', () => {
    for (const to of UPDATE_STATES) {
      for (const from of UPDATE_STATES) expect(allowedFrom(to).includes(from)).toBe(isAllowed(from, to));
    }
    expect(allowedFrom('cancelled')).toEqual(['pending', 'scheduled', 'notified', 'downloading']);
    expect(movableFrom('pending', ['scheduled'])).toEqual(['scheduled']);
    expect(() => movableFrom('cancelled', ['pending', 'installing'])).toThrow(/installing to cancelled/);
  });
  it('a decommissioned device ends every open update as cancelled, installs included', () => {
    expect(allowedFrom('cancelled', 'decommission')).toEqual([...OPEN_STATES]);
    for (const to of UPDATE_STATES) {
      if (to !== 'cancelled') expect(allowedFrom(to, 'decommission')).toEqual([]);
    }
  });
});
