import { describe, expect, it } from 'vitest';
import { DEFAULT_UPDATE_MS } from './eta.js';
import { estimateEtaBand, updateTimeFrom } from './eta-band.js';
import { LocalHours, learnPresence } from './presence.js';

const MINUTE = 60_000;
const HOUR = 3_600_000;
const NOW = Date.parse('2024-11-04T12:00:00Z');

/** Devices online for the whole of the last two weeks. */
function online(count: number) {
  const from = NOW - 14 * 24 * HOUR;
  const histories = Array.from({ length: count }, () => ({
    from,
    changes: [],
    online: true,
    lastSeen: NOW,
    timezone: 'UTC',
  }));
  return learnPresence(histories, NOW).map((presence) => ({ presence }));
}

describe('updateTimeFrom', () => {
  it("takes this rollout's durations first, and the band narrows as they grow", () => {
    const few = updateTimeFrom([2 * MINUTE, 4 * MINUTE], [30 * MINUTE]);
    expect(few.source).toBe('observed');
    expect(few.typicalMs).toBe(3 * MINUTE);
    const many = updateTimeFrom(
      Array.from({ length: 200 }, (_, i) => (i % 2 ? 2 : 4) * MINUTE),
      [],
    );
    expect(many.typicalMs).toBe(3 * MINUTE);
    expect(many.slowMs).toBeLessThan(few.slowMs);
    expect(many.slowMs).toBeGreaterThanOrEqual(3.3 * MINUTE - 1);
  });

  it('falls back to earlier rollouts on the same hardware, then to the default', () => {
    const history = updateTimeFrom([], [5 * MINUTE, 7 * MINUTE]);
    expect(history).toMatchObject({ source: 'history', samples: 2, typicalMs: 6 * MINUTE });
    const none = updateTimeFrom([], []);
    expect(none).toMatchObject({ source: 'default', samples: 0, typicalMs: DEFAULT_UPDATE_MS });
    expect(none.slowMs).toBeGreaterThan(none.typicalMs);
  });

  it('counts many earlier updates as only a few of its own (another release may install slower)', () => {
    const durations = Array.from({ length: 400 }, (_, i) => (i % 2 ? 2 : 4) * MINUTE);
    expect(updateTimeFrom([], durations).slowMs).toBeGreaterThan(updateTimeFrom(durations, []).slowMs);
  });
});

describe('estimateEtaBand', () => {
  it('gives a P50 at the mean update time and a later P90', () => {
    const devices = online(1000);
    const band = estimateEtaBand(
      { devices, maxConcurrent: 100, now: NOW, clock: new LocalHours() },
      updateTimeFrom([], []),
    );
    // Ten rounds of 100 updates of 15 minutes; the P90 at three times as long.
    expect((band.finishAt - NOW) / HOUR).toBeCloseTo(2.5, 0);
    expect((band.p90At - NOW) / HOUR).toBeCloseTo(7.5, 0);
    expect(band.updateTime.source).toBe('default');
  });

  it('five online devices and a window two minutes out finish within minutes, not days', () => {
    const devices = online(5);
    const opens = new Date(NOW + 2 * MINUTE);
    const band = estimateEtaBand(
      {
        devices,
        maxConcurrent: 1,
        now: NOW,
        clock: new LocalHours(),
        window: {
          start: opens.getUTCHours() * 60 + opens.getUTCMinutes(),
          end: opens.getUTCHours() * 60 + opens.getUTCMinutes() + 120,
          timezone: 'UTC',
          days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'],
          cron: null,
        },
      },
      updateTimeFrom([], [MINUTE / 2, MINUTE]),
    );
    expect(band.unknownDevices).toBe(0);
    expect(band.p90At - NOW).toBeLessThan(HOUR);
  });
});
