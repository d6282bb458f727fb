import { describe, expect, it } from 'vitest';
import { describeLeft, expiring, warningWindows } from './tuf-expiry.js';
import { DEFAULT_LIFETIMES } from './tuf-plan.js';

const H = 3_600_000;
const D = 24 * H;
const windows = warningWindows(DEFAULT_LIFETIMES);

describe('expiring', () => {
  it('warns of root a month ahead and of nothing that is re-signed on time', () => {
    const now = 0;
    const healthy = { root: 31 * D, targets: 80 * D, snapshot: 6 * D, timestamp: 20 * H };
    expect(expiring(healthy, windows, now)).toEqual([]);
    expect(expiring({ ...healthy, root: 29 * D }, windows, now)).toEqual([
      { role: 'root', expiresMs: 29 * D, leftMs: 29 * D },
    ]);
  });

  it('warns of an online role with under a quarter of its lifetime left (re-signing is failing), and of expired ones', () => {
    const got = expiring({ root: 400 * D, timestamp: 5 * H, snapshot: -D }, windows, 0).map((e) => e.role);
    expect(got).toEqual(['snapshot', 'timestamp']);
  });

  it('says how long is left in days or hours', () => {
    expect(describeLeft(12 * D + H)).toBe('in 12 days');
    expect(describeLeft(5 * H)).toBe('in 5 hours');
    expect(describeLeft(-3 * D)).toBe('3 days ago');
  });
});
