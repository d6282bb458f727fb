import { describe, expect, it } from 'vitest';
import { estimateEta } from './eta.js';
import { phaseLimits } from './phase-limits.js';
import { LocalHours, learnPresence } from './presence.js';
import { parseRolloutSpec } from './spec.js';

const HOUR = 3_600_000;
const NOW = Date.parse('2024-11-04T12:00:00Z');

describe('phaseLimits', () => {
  const spec = parseRolloutSpec({
    name: 'x',
    release: 'fw@2.0.0',
    filter: '',
    strategy: 'progressive',
    max_concurrent: 100,
    rate: { per_minute: 50 },
    phases: [
      { percentage: 1, max_concurrent: 10 },
      { percentage: 10, rate: { per_minute: 5 } },
      { percentage: 100 },
    ],
  });

  it("the current phase's own limits, else the rollout's", () => {
    expect(phaseLimits(spec, 0)).toEqual({ maxConcurrent: 10, rate: spec.rate });
    expect(phaseLimits(spec, 1)).toEqual({ maxConcurrent: 100, rate: spec.phases[1]!.rate });
    expect(phaseLimits(spec, 2)).toEqual({ maxConcurrent: 100, rate: spec.rate });
  });

  it('the ETA runs the open phase at its own max_concurrent: half the slots, twice the time', () => {
    // 1,000 devices online for two weeks: 15-minute updates, 100 at once → 2.5 h; 50 at once → 5 h.
    const devices = learnPresence(
      Array.from({ length: 1000 }, () => ({
        from: NOW - 14 * 24 * HOUR,
        changes: [{ at: NOW - 14 * 24 * HOUR, online: true }],
        online: true,
        lastSeen: NOW,
        timezone: 'UTC',
      })),
      NOW,
    ).map((presence) => ({ presence }));
    const input = { devices, maxConcurrent: 100, now: NOW, clock: new LocalHours() };
    const whole = estimateEta({ ...input, phases: [{ name: 'all', waitMs: 0 }] });
    const halved = estimateEta({ ...input, phases: [{ name: 'all', waitMs: 0, maxConcurrent: 50 }] });
    expect((whole.finishAt - NOW) / HOUR).toBeCloseTo(2.5, 0);
    expect((halved.finishAt - NOW) / HOUR).toBeCloseTo(5, 0);
  });
});
