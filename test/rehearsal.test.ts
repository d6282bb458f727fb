/**
 * Issue 19: a rehearsal on a registry with recorded status history predicts the finish of a simulated run of
 * the same spec. The simulator (the real server in virtual time, on its injected clock) records two and a half
 * days of a POS fleet's status history and an earlier rollout's update times; the rehearsal reads that store as
 * the route does, and a second run of the same scenario carries the rollout out for real.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_THRESHOLDS } from '../src/core/device.js';
import { parseRolloutSpec } from '../src/core/rollout/spec.js';
import { type RehearsalResult, rehearsePlan } from '../src/engine/rehearsal.js';
import { planFor } from '../src/engine/rollout-service.js';
import { buildResult } from '../src/sim/result.js';
import { parseScenario } from '../src/sim/scenario.js';
import { Simulator } from '../src/sim/simulator.js';
import { openStore } from '../src/store/open.js';

const START = '2026-03-02T00:00:00Z';
/** Wednesday 09:00 in New York, 06:00 in Los Angeles: the shops are opening. */
const CREATED = Date.parse('2026-03-04T14:00:00Z');

const fleet = [
  {
    count: 300,
    id_prefix: 'pos-',
    profile: 'pos',
    hardware_type: 'pos-t1',
    firmware: { '1.0.0': 1 },
    timezones: { 'America/New_York': 0.5, 'America/Los_Angeles': 0.5 },
    install_seconds: { uniform: [120, 480] },
  },
];
// An earlier rollout on the same hardware: its update times are what the rehearsal draws installs from.
const pilot = {
  at: '1d',
  spec: { name: 'pilot', release: 'pos-fw@1.1.0', filter: 'id = pos-000*', strategy: 'immediate' },
};
// The simulator brings last_seen up to date when a rollout is planned: a one-device rollout at the rehearsal's
// instant gives the store the same last hours as the real run's has when it plans the rollout (both runs have it).
const keeper = {
  at: '62h',
  spec: { name: 'keeper', release: 'pos-fw@1.2.0', filter: 'id = pos-0001', strategy: 'immediate' },
};
// Capacity-bound: 290 targets, 5 at once, installs of 2–8 minutes, shops opening in two zones.
const spec = { name: 'day', release: 'pos-fw@1.1.0', filter: '', strategy: 'immediate', max_concurrent: 5 };

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('rehearsal', () => {
  it("predicts, from the fleet's recorded history, a simulated run's finish within 15 %", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'fleetd-rehearsal-'));
    dirs.push(dataDir);
    const history = { start: START, duration: '62h', seed: 7, fleet, rollouts: [pilot, keeper] };
    await new Simulator(parseScenario(history), { dataDir }).run();

    const store = await openStore({ dataDir });
    const ctx = { now: CREATED, thresholds: DEFAULT_THRESHOLDS };
    let rehearsal: RehearsalResult;
    try {
      const planned = await planFor(store, parseRolloutSpec(spec), ctx);
      rehearsal = await rehearsePlan(store, planned, ctx, { failureRate: 0, seeds: 5 });
    } finally {
      await store.close();
    }
    expect(rehearsal.targets).toBe(290); // the pilot's ten already run the release
    expect(rehearsal.rehearsed).toBe(290);
    expect(rehearsal.updateTimeSource).toBe('history');
    expect(rehearsal.finishedRuns).toBe(5);
    expect(rehearsal.p90At!).toBeGreaterThanOrEqual(rehearsal.p50At!);

    const real = buildResult(
      await new Simulator(
        parseScenario({ ...history, duration: '5d', rollouts: [pilot, keeper, { at: '62h', spec }] }),
      ).run(),
    );
    const r = real.rollouts.find((x) => x.name === 'day')!;
    expect(r.state).toBe('completed');
    const actual = Date.parse(r.finished_at!) - CREATED;
    const predicted = rehearsal.p50At! - CREATED;
    expect(Math.abs(predicted - actual) / actual).toBeLessThanOrEqual(0.15);
  }, 60_000);

  it('with a failure rate, the gates halt a progressive rollout; with a deadline, names a max_concurrent', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'fleetd-rehearsal-'));
    dirs.push(dataDir);
    await new Simulator(
      parseScenario({ start: START, duration: '62h', seed: 7, fleet, rollouts: [pilot, keeper] }),
      { dataDir },
    ).run();
    const store = await openStore({ dataDir });
    const ctx = { now: CREATED, thresholds: DEFAULT_THRESHOLDS };
    try {
      const progressive = parseRolloutSpec({
        ...spec,
        strategy: 'progressive',
        retry: { attempts: 1 },
        phases: [
          { name: 'canary', percentage: 10, wait: '1h', success_rate: 95 },
          { name: 'rest', percentage: 100 },
        ],
      });
      const planned = await planFor(store, progressive, ctx);
      const bad = await rehearsePlan(store, planned, ctx, { failureRate: 0.5, seeds: 3 });
      expect(bad.haltedRuns).toBe(3);
      expect(bad.runs.every((run) => run.phases[0]!.gate === 'halted' && run.unfinished > 0)).toBe(true);
      const good = await rehearsePlan(store, planned, ctx, { failureRate: 0, seeds: 3 });
      expect(good.haltedRuns).toBe(0);
      expect(good.runs.every((run) => run.phases[0]!.gate === 'passed')).toBe(true);

      // A deadline the spec's 5 at once cannot meet (its P50 is over five hours) but more at once can.
      const plain = await planFor(store, parseRolloutSpec(spec), ctx);
      const fast = await rehearsePlan(store, plain, ctx, {
        failureRate: 0,
        seeds: 3,
        deadline: CREATED + 4.5 * 3_600_000,
      });
      expect(fast.deadline!.maxConcurrent).toBeGreaterThan(5);
      expect(fast.deadline!.p90At!).toBeLessThanOrEqual(CREATED + 4.5 * 3_600_000);
    } finally {
      await store.close();
    }
  }, 60_000);
});
