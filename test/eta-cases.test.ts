/**
 * Issue 19's three cases where a single ETA misled, each a fleet in the simulator (the real server in virtual
 * time): the dry run's band and reachability, and the live ETA recorded every simulated hour.
 */
import { describe, expect, it } from 'vitest';
import { buildResult, type SimResult } from '../src/sim/result.js';
import { parseScenario } from '../src/sim/scenario.js';
import { Simulator } from '../src/sim/simulator.js';

const HOUR = 3_600_000;
const START = '2026-03-02T00:00:00Z';

async function run(doc: Record<string, unknown>): Promise<SimResult> {
  return buildResult(await new Simulator(parseScenario(doc)).run());
}

describe('issue 19: the ETA band and reachability', () => {
  it('kiosks in four US zones finishing the first night: the P50 says the first night', async () => {
    const zones = {
      'America/New_York': 0.25,
      'America/Chicago': 0.25,
      'America/Denver': 0.25,
      'America/Los_Angeles': 0.25,
    };
    const kiosk = { profile: 'always', hardware_type: 'kiosk-2', firmware: { '1.0.0': 1 }, timezones: zones };
    const result = await run({
      start: START,
      duration: '4d',
      seed: 19,
      fleet: [{ ...kiosk, count: 1200, id_prefix: 'kiosk-', install_seconds: { uniform: [60, 300] } }],
      rollouts: [
        // An earlier rollout on the same hardware: its update times are the new one's history.
        {
          at: '1d',
          spec: {
            name: 'pilot',
            release: 'kiosk-fw@1.1.0',
            filter: 'id = kiosk-000*',
            strategy: 'immediate',
          },
        },
        {
          at: '60h',
          spec: {
            name: 'night',
            release: 'kiosk-fw@2.0.0',
            filter: '',
            strategy: 'scheduled',
            // The 3,000 kiosks at 100 at once, scaled by 0.4: the same hours per zone, in less test time.
            max_concurrent: 40,
            window: { start: '02:00', end: '04:00', timezone: 'device' },
          },
        },
      ],
    });
    const r = result.rollouts.find((x) => x.name === 'night')!;
    expect(r.state).toBe('completed');
    const actual = Date.parse(r.finished_at!);
    // The first night ends at 04:00 in Los Angeles: 12:00 UTC on Thursday.
    const firstNightEnds = Date.parse('2026-03-05T12:00:00Z');
    expect(actual).toBeLessThanOrEqual(firstNightEnds);
    // At creation, from the pilot's update times on the same hardware.
    expect(r.plan!.source).toBe('history');
    expect(Date.parse(r.plan!.p50_at)).toBeLessThanOrEqual(firstNightEnds);
    expect(r.plan!.reachability.unreachable.count).toBe(0);
    // Live: recorded every hour while it ran; from the first finished update on, observed and the first night.
    const hourly = r.eta.filter((e) => e.when === 'hourly');
    expect(hourly.length).toBeGreaterThan(3);
    const observed = hourly.filter((e) => e.source === 'observed');
    expect(observed.length).toBeGreaterThan(0);
    for (const e of observed) {
      expect(Date.parse(e.predicted_finish!)).toBeLessThanOrEqual(firstNightEnds);
      expect(Date.parse(e.predicted_p90!)).toBeGreaterThanOrEqual(Date.parse(e.predicted_finish!));
    }
  }, 600_000);

  it('POS terminals off at night: the dry run flags every one unreachable in a 02:00–04:00 window, with a suggestion', async () => {
    const result = await run({
      start: START,
      duration: '50h',
      seed: 19,
      fleet: [
        {
          count: 2000,
          id_prefix: 'pos-',
          profile: 'pos',
          hardware_type: 'pos-t1',
          firmware: { '1.0.0': 1 },
          timezones: { 'America/New_York': 1 },
          install_seconds: 300,
        },
      ],
      rollouts: [
        {
          at: '2d',
          spec: {
            name: 'pos-night',
            release: 'pos-fw@2.0.0',
            filter: '',
            strategy: 'scheduled',
            // The 3,000 kiosks at 100 at once, scaled by 0.4: the same hours per zone, in less test time.
            max_concurrent: 40,
            window: { start: '02:00', end: '04:00', timezone: 'device' },
          },
        },
      ],
    });
    const r = result.rollouts[0]!;
    const reach = r.plan!.reachability;
    expect(reach.targets).toBe(2000);
    expect(reach.unreachable.count).toBe(2000);
    expect(reach.unreachable.devices).toHaveLength(100);
    const advice = reach.suggestions.join('\n');
    expect(advice).toMatch(/widen the window/);
    expect(advice).toContain('missed_window: on_connect');
    // The live ETA says so too, over its sample of the waiting devices.
    const live = r.eta.find((e) => e.unreachable > 0);
    expect(live?.unreachable).toBe(2000);
  }, 600_000);

  it('five always-online agents, a window two minutes out: the ETA says minutes, not days', async () => {
    const result = await run({
      start: START,
      duration: '6h',
      seed: 19,
      fleet: [
        {
          count: 5,
          id_prefix: 'agent-',
          profile: 'always',
          hardware_type: 'rpi4',
          firmware: { '1.0.0': 1 },
          install_seconds: 5,
        },
      ],
      rollouts: [
        {
          at: '5m',
          spec: {
            name: 'soon',
            release: 'app@2.0.0',
            filter: '',
            strategy: 'scheduled',
            max_concurrent: 1,
            window: { start: '00:07', end: '04:00', timezone: 'UTC' },
          },
        },
      ],
    });
    const r = result.rollouts[0]!;
    expect(r.state).toBe('completed');
    const created = Date.parse(START) + 5 * 60_000;
    // No update time known yet: the default's band, a few hours at most, every device expected.
    expect(r.plan!.source).toBe('default');
    expect(r.plan!.unknown_devices).toBe(0);
    expect(Date.parse(r.plan!.p50_at) - created).toBeLessThan(2 * HOUR);
    expect(Date.parse(r.plan!.p90_at) - created).toBeLessThan(4 * HOUR);
    // Too new for a window to have gone by: not judged unreachable.
    expect(r.plan!.reachability).toMatchObject({ too_new: 5, unreachable: { count: 0 } });
  }, 600_000);
});
