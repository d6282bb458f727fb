import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  abortDecision,
  batchCount,
  batchFinished,
  blueGreenDecision,
  type GateInput,
  gateDecision,
  phaseSizes,
  pickCanaries,
  rolloutOrder,
} from './phases.js';

describe('phaseSizes', () => {
  it('splits 10,000 devices 1% / 10% / 100% into 100, 900 and 9,000 (seed 000)', () => {
    expect(phaseSizes(10_000, [1, 10, 100])).toEqual([
      { cumulative: 100, size: 100 },
      { cumulative: 1000, size: 900 },
      { cumulative: 10_000, size: 9000 },
    ]);
  });
  it('splits 10 devices 10% / 50% / 100% into 1, 4 and 5 (seed 001)', () => {
    expect(phaseSizes(10, [10, 50, 100]).map((p) => p.cumulative)).toEqual([1, 5, 10]);
  });
  it('rounds up so each phase reaches at least its share', () => {
    expect(phaseSizes(150, [1, 100]).map((p) => p.cumulative)).toEqual([2, 150]);
    expect(phaseSizes(1000, [0.1, 100]).map((p) => p.cumulative)).toEqual([1, 1000]);
  });
  it('gives the first phase one device on a tiny fleet, and a later phase may add none', () => {
    expect(phaseSizes(3, [1, 10, 100])).toEqual([
      { cumulative: 1, size: 1 },
      { cumulative: 1, size: 0 },
      { cumulative: 3, size: 2 },
    ]);
  });
  it('gives every phase zero devices when there are none', () => {
    expect(phaseSizes(0, [1, 100]).map((p) => p.size)).toEqual([0, 0]);
  });
  it('property: cumulative, never decreasing, reaching each share, last exactly total', () => {
    const percentages = fc
      .uniqueArray(fc.integer({ min: 1, max: 999 }), { maxLength: 5 })
      .map((xs) => [...xs.sort((a, b) => a - b).map((x) => x / 10), 100]);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1_000_000 }), percentages, (total, ps) => {
        const sizes = phaseSizes(total, ps);
        expect(sizes.at(-1)!.cumulative).toBe(total);
        expect(sizes.reduce((s, p) => s + p.size, 0)).toBe(total);
        if (total > 0) expect(sizes[0]!.cumulative).toBeGreaterThanOrEqual(1);
        sizes.forEach((p, i) => {
          expect(p.size).toBeGreaterThanOrEqual(0);
          expect(p.cumulative).toBeGreaterThanOrEqual(Math.floor((total * ps[i]!) / 100));
          expect(p.cumulative).toBeLessThanOrEqual(Math.max(1, Math.ceil((total * ps[i]!) / 100)));
        });
      }),
    );
  });
});

describe('pickCanaries', () => {
  const fleet = Array.from({ length: 100 }, (_, i) => ({
    id: `d${String(i).padStart(3, '0')}`,
    online: i % 3 !== 0,
  }));
  it('is the same for the same seed whatever order the candidates come in', () => {
    const a = pickCanaries(fleet, 10, 42).map((c) => c.id);
    const b = pickCanaries([...fleet].reverse(), 10, 42).map((c) => c.id);
    expect(a).toEqual(b);
    expect(pickCanaries(fleet, 10, 43).map((c) => c.id)).not.toEqual(a);
  });
  it('takes online devices first and offline ones only when online ones run out', () => {
    const online = fleet.filter((c) => c.online).length;
    expect(pickCanaries(fleet, online, 7).every((c) => c.online)).toBe(true);
    const more = pickCanaries(fleet, online + 5, 7);
    expect(more.slice(online).every((c) => !c.online)).toBe(true);
  });
  it('returns every candidate when asked for more than there are, and none for 0', () => {
    expect(pickCanaries(fleet, 500, 1)).toHaveLength(100);
    expect(pickCanaries(fleet, 0, 1)).toEqual([]);
  });
  it('spreads the choice: over many seeds every online device is sometimes a canary', () => {
    const seen = new Set<string>();
    for (let seed = 0; seed < 200; seed++) for (const c of pickCanaries(fleet, 5, seed)) seen.add(c.id);
    expect(seen.size).toBe(fleet.filter((c) => c.online).length);
  });
  it('property: the order is a permutation with every online device before every offline one', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.record({ id: fc.string({ minLength: 1, maxLength: 6 }), online: fc.boolean() }), {
          selector: (c) => c.id,
        }),
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        (cands, seed) => {
          const order = rolloutOrder(cands, seed);
          expect(order.map((c) => c.id).sort()).toEqual(cands.map((c) => c.id).sort());
          const firstOffline = order.findIndex((c) => !c.online);
          if (firstOffline >= 0) expect(order.slice(firstOffline).every((c) => !c.online)).toBe(true);
        },
      ),
    );
  });
});

describe('gateDecision', () => {
  const start = Date.parse('2024-10-21T00:00:00Z');
  const soak = 24 * 3_600_000;
  const canary = { waitMs: soak, successRate: 95, approval: 'auto' as const, quorum: 50 };
  const gate = (over: Partial<GateInput>) =>
    gateDecision({ phase: canary, startedAt: start, now: start + soak, counts: {}, ...over });

  it('waits out the soak time even when every device already succeeded', () => {
    expect(gate({ now: start + 3_600_000, counts: { succeeded: 100 } })).toEqual({
      kind: 'wait',
      until: start + soak,
      reason: 'soaking',
    });
  });
  it('passes at soak end when the success rate meets the threshold (95 of 100 is enough for 95%)', () => {
    expect(gate({ counts: { succeeded: 95, failed: 5 } })).toEqual({ kind: 'pass', successRate: 95 });
  });
  it('halts at soak end when the rate over finished devices is below the threshold', () => {
    const d = gate({ counts: { succeeded: 90, failed: 5, pending: 5 } });
    expect(d.kind).toBe('halt');
    expect(d).toMatchObject({ successRate: (90 * 100) / 95 });
  });
  it('halts during the soak once the threshold can no longer be reached', () => {
    const d = gate({ now: start + 60_000, counts: { succeeded: 10, failed: 6, downloading: 84 } });
    expect(d).toMatchObject({ kind: 'halt', reason: expect.stringMatching(/can no longer reach 95%/) });
  });
  it('does not count devices still offline at soak end for or against the rate', () => {
    expect(gate({ counts: { succeeded: 60, pending: 40 } })).toEqual({ kind: 'pass', successRate: 100 });
  });
  it('waits, without a deadline, until the quorum of the phase has finished', () => {
    expect(gate({ counts: { succeeded: 30, downloading: 10, pending: 60 } })).toEqual({
      kind: 'wait',
      until: null,
      reason: '30 of 50 devices needed have finished',
    });
  });
  it('never passes on no evidence: with quorum 0 it still needs one finished device', () => {
    const d = gateDecision({
      phase: { ...canary, quorum: 0 },
      startedAt: start,
      now: start + soak,
      counts: { pending: 3 },
    });
    expect(d.kind).toBe('wait');
  });
  it('counts rolled back devices as failures and ignores cancelled and skipped ones', () => {
    expect(gate({ counts: { succeeded: 19, rolled_back: 1, cancelled: 50, skipped: 30 } })).toEqual({
      kind: 'pass',
      successRate: 95,
    });
    expect(gate({ counts: { succeeded: 18, rolled_back: 2 } }).kind).toBe('halt');
  });
  it('passes a phase with no devices at once (small fleets)', () => {
    expect(gate({ now: start, counts: { skipped: 2 } })).toEqual({ kind: 'pass', successRate: null });
  });
  it('asks for approval after passing when approval is manual, and passes once approved', () => {
    const phase = { ...canary, approval: 'manual' as const };
    expect(gate({ phase, counts: { succeeded: 100 } })).toEqual({ kind: 'await_approval', successRate: 100 });
    expect(gate({ phase, counts: { succeeded: 100 }, approved: true })).toEqual({
      kind: 'pass',
      successRate: 100,
    });
  });
  it('halts at any time on the abort criterion once enough updates finished', () => {
    const lenient = { ...canary, successRate: 0 };
    const abort = { failureRate: 20, minFinished: 10 };
    expect(
      gate({ phase: lenient, now: start, abort, counts: { failed: 3, succeeded: 6, pending: 91 } }).kind,
    ).toBe('wait');
    const d = gate({ phase: lenient, now: start, abort, counts: { failed: 3, succeeded: 7, pending: 90 } });
    expect(d).toMatchObject({ kind: 'halt', reason: 'abort: 3 of 10 finished updates failed (≥ 20%)' });
  });
  it('property: never passes before soak end or below the threshold', () => {
    const counts = fc.record({
      succeeded: fc.nat(50),
      failed: fc.nat(50),
      rolled_back: fc.nat(5),
      pending: fc.nat(50),
      downloading: fc.nat(10),
    });
    fc.assert(
      fc.property(
        counts,
        fc.integer({ min: 0, max: 2 * soak }),
        fc.integer({ min: 0, max: 100 }),
        (c, dt, rate) => {
          const d = gate({ phase: { ...canary, successRate: rate }, now: start + dt, counts: c });
          if (d.kind === 'pass' && c.succeeded + c.failed + c.rolled_back > 0) {
            expect(dt).toBeGreaterThanOrEqual(soak);
            expect(c.succeeded * 100).toBeGreaterThanOrEqual(rate * (c.succeeded + c.failed + c.rolled_back));
          }
        },
      ),
    );
  });
});

describe('abort, rolling and blue-green', () => {
  it('abortDecision carries on without a policy', () => {
    expect(abortDecision(null, { failed: 100 })).toBeNull();
  });
  it('a rolling batch is finished when nothing is updating and no online device is still waiting', () => {
    expect(batchFinished({ succeeded: 40, pending: 10 }, 0)).toBe(true);
    expect(batchFinished({ succeeded: 40, installing: 1 }, 0)).toBe(false);
    expect(batchFinished({ succeeded: 40, pending: 10 }, 2)).toBe(false);
    expect(batchCount(101, 50)).toBe(3);
  });
  it('blue-green switches on promote, or once the staged share is reached', () => {
    expect(blueGreenDecision({ targets: 10, staged: 5, promoted: false, switchAt: null })).toEqual({
      kind: 'stage',
      stagedShare: 50,
    });
    expect(blueGreenDecision({ targets: 10, staged: 5, promoted: true, switchAt: null }).kind).toBe('switch');
    expect(blueGreenDecision({ targets: 10, staged: 9, promoted: false, switchAt: 90 })).toEqual({
      kind: 'switch',
      reason: 'staged_share_reached',
      stagedShare: 90,
    });
  });
});
