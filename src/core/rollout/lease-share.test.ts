import { describe, expect, it } from 'vitest';
import { type LeaseCandidate, leaseShare } from './lease-share.js';

const rollouts = (prefix: string, n: number, from = 0): LeaseCandidate[] =>
  Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, createdAt: from + i }));
const ids = (c: LeaseCandidate[]) => c.map((r) => r.id);

describe('leaseShare', () => {
  it('a lone replica takes every open rollout', () => {
    const d = leaseShare({ open: 9, live: 1, mine: [], free: rollouts('r', 9) });
    expect(d.share).toBe(9);
    expect(d.take).toHaveLength(9);
    expect(d.handBack).toEqual([]);
  });

  it('with 3 live replicas and 9 rollouts, a replica takes 3, oldest first', () => {
    const d = leaseShare({ open: 9, live: 3, mine: [], free: [...rollouts('r', 9)].reverse() });
    expect(ids(d.take)).toEqual(['r0', 'r1', 'r2']);
  });

  it('tops up to the share what it already holds', () => {
    const d = leaseShare({ open: 10, live: 3, mine: rollouts('m', 2), free: rollouts('f', 5, 100) });
    expect(d.share).toBe(4);
    expect(ids(d.keep)).toEqual(['m0', 'm1']);
    expect(ids(d.take)).toEqual(['f0', 'f1']);
  });

  it('hands back its newest rollouts beyond the share, and takes nothing then', () => {
    const d = leaseShare({ open: 9, live: 3, mine: rollouts('m', 9), free: [] });
    expect(ids(d.keep)).toEqual(['m0', 'm1', 'm2']);
    expect(ids(d.handBack)).toEqual(['m3', 'm4', 'm5', 'm6', 'm7', 'm8']);
    expect(d.take).toEqual([]);
  });

  it('at its share a replica neither takes nor hands back (stable)', () => {
    const d = leaseShare({ open: 10, live: 3, mine: rollouts('m', 4), free: rollouts('f', 1, 100) });
    expect(d.take).toEqual([]);
    expect(d.handBack).toEqual([]);
  });

  it('the shares of the live replicas always cover every open rollout', () => {
    for (let open = 0; open <= 30; open++) {
      for (let live = 1; live <= 7; live++) {
        expect(leaseShare({ open, live, mine: [], free: [] }).share * live).toBeGreaterThanOrEqual(open);
      }
    }
  });
});
