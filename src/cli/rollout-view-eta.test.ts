import { describe, expect, it } from 'vitest';
import type { ReachabilityJson } from '../protocol/rollouts.js';
import { band, reachabilityLines } from './rollout-view.js';

const NOW = Date.parse('2026-03-04T00:00:00Z');

describe('the ETA band and reachability in the CLI', () => {
  it('prints P50 and P90 with where the update time came from', () => {
    const line = band(
      {
        finish_at: '2026-03-04T02:00:00.000Z',
        p50_at: '2026-03-04T02:00:00.000Z',
        p90_at: '2026-03-04T06:00:00.000Z',
        source: 'history',
        update_time: { typical_ms: 180_000, slow_ms: 270_000, samples: 40 },
        throughput_per_hour: 100,
        unknown_devices: 0,
        phases: [],
      },
      NOW,
    );
    expect(line).toContain('P50 2026-03-04 02:00Z');
    expect(line).toContain('P90 2026-03-04 06:00Z');
    expect(line).toContain('earlier rollouts on this hardware');
  });

  it('names the unreachable and never-seen targets and the suggestions; nothing when all are reachable', () => {
    const r: ReachabilityJson = {
      days: 7,
      checked: 8,
      reachable: 1,
      too_new: 0,
      unreachable: { count: 7, devices: ['a', 'b', 'c', 'd', 'e', 'f', 'g'] },
      never_seen: { count: 1, devices: ['n'] },
      suggestions: ['widen the window'],
    };
    const lines = reachabilityLines(r, 'targeted');
    expect(lines[0]).toBe(
      '7 of 8 targeted devices judged were not online inside their window on any of the last 7 days: a b c d e … and 2 more',
    );
    expect(lines[1]).toBe('1 never seen: n');
    expect(lines[2]).toBe('→ widen the window');
    expect(
      reachabilityLines(
        { ...r, unreachable: { count: 0, devices: [] }, never_seen: { count: 0, devices: [] } },
        'x',
      ),
    ).toEqual([]);
  });
});
