import { describe, expect, it } from 'vitest';
import { DOWNLOAD_FLOOR_BYTES_PER_SEC, egressFree, egressSlots } from './egress-slots.js';

describe('egress slots', () => {
  it('divides the cap by the floor, or by the rollout download rate when it has one', () => {
    expect(DOWNLOAD_FLOOR_BYTES_PER_SEC).toBe(250_000);
    expect(egressSlots(2_000_000, null)).toBe(8);
    expect(egressSlots(2_000_000, 100_000)).toBe(20);
    expect(egressSlots(2_000_000, 300_000)).toBe(6);
  });

  it('always leaves one slot, even when one download is faster than the cap', () => {
    expect(egressSlots(100_000, null)).toBe(1);
    expect(egressSlots(1_000_000, 5_000_000)).toBe(1);
  });

  it('counts the downloads under way against the slots, never below zero', () => {
    expect(egressFree(1_000_000, null, 0)).toBe(4);
    expect(egressFree(1_000_000, null, 3)).toBe(1);
    expect(egressFree(1_000_000, null, 4)).toBe(0);
    expect(egressFree(1_000_000, null, 9)).toBe(0);
  });
});
