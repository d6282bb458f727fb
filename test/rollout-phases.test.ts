/**
 * Phases that differ: each phase's own max_concurrent and rate, and `promote` starting a progressive
 * rollout's next phase now. The real API, store and engine on a fake clock, on each database.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseRolloutSpec } from '../src/core/rollout/spec.js';
import { toRolloutDocument } from '../src/core/rollout/spec-document.js';
import { VirtualFleet } from '../src/sim/virtual-fleet.js';
import { command, create, events, show, syntheticFleet } from './support/rollouts.js';
import { forEachDatabase } from './support/stores.js';

let fleet: VirtualFleet | undefined;
afterEach(async () => {
  await fleet?.close();
  fleet = undefined;
});

async function onlineFleet(db: string | undefined, count: number): Promise<VirtualFleet> {
  fleet = await VirtualFleet.create({ start: Date.parse('2026-01-05T12:00:00Z'), db });
  await fleet.importFleet(syntheticFleet(count));
  await fleet.release('fw', '2.0.0', ['hw-a']);
  for (const d of fleet.devices.values()) await d.heartbeat();
  return fleet;
}

/** Every device asks once, none finishes: how many hold a download slot now. */
async function askAll(f: VirtualFleet): Promise<number> {
  const answers = await Promise.all([...f.devices.values()].map((d) => d.heartbeat()));
  return answers.flat().filter((u) => u.state === 'notified').length;
}

const base = { release: 'fw@2.0.0', filter: '', strategy: 'progressive' };

describe('per-phase limits in the spec', () => {
  it('reads max_concurrent and rate per phase and writes them back unchanged', () => {
    const spec = parseRolloutSpec({
      name: 'x',
      ...base,
      phases: [
        { name: 'canary', percentage: 5, max_concurrent: 10, rate: { per_minute: 2 } },
        { percentage: 100 },
      ],
    });
    expect(spec.phases.map((p) => [p.maxConcurrent, p.rate?.perMinute ?? null])).toEqual([
      [10, 2],
      [null, null],
    ]);
    const doc = toRolloutDocument(spec);
    expect(doc.phases?.[0]).toMatchObject({ max_concurrent: 10, rate: { per_minute: 2, growth_factor: 1 } });
    expect(doc.phases?.[1]).not.toHaveProperty('max_concurrent');
    expect(parseRolloutSpec(doc)).toEqual(spec);
  });

  it("checks a phase's rate as the rollout's, naming the phase", () => {
    expect(() =>
      parseRolloutSpec({
        name: 'x',
        ...base,
        phases: [{ percentage: 100, rate: { per_minute: 5, max_per_minute: 2 } }],
      }),
    ).toThrow('phases[0].rate.max_per_minute: must be at least per_minute (5)');
    expect(() =>
      parseRolloutSpec({ name: 'x', ...base, phases: [{ percentage: 100, max_concurrent: 0 }] }),
    ).toThrow(/phases\[0\]\.max_concurrent/);
  });
});

forEachDatabase((database) => {
  let db: string | undefined;
  beforeEach(async () => {
    db = await database.fresh();
  });

  describe('phases that differ', () => {
    it("the canary phase's max_concurrent holds while it is current, the next phase's after promote", async () => {
      const f = await onlineFleet(db, 20);
      const r = await create(f, {
        name: 'canary-10',
        ...base,
        max_concurrent: 100,
        phases: [
          { name: 'canary', percentage: 20, wait: '24h', max_concurrent: 1 },
          { name: 'rest', percentage: 100, max_concurrent: 3 },
        ],
      });
      expect(await askAll(f)).toBe(1); // 4 canaries ask, one slot
      expect(await askAll(f)).toBe(1); // still the one
      const promoted = await command(f, r.id, 'promote');
      expect(promoted.current_phase).toBe(1);
      expect(await askAll(f)).toBe(3); // 3 at once in this phase, the canary at work one of them
      expect(await askAll(f)).toBe(3);
      const types = (await events(f, r.id, 'rollout.')).map((e) => e.type);
      expect(types).toContain('rollout.promoted');
      expect(types.at(-1)).toBe('rollout.phase_started');
    });

    it('promote starts the next phase before its soak, quorum and manual approval; refused in the last', async () => {
      const f = await onlineFleet(db, 10);
      const r = await create(f, {
        name: 'promote',
        ...base,
        phases: [{ percentage: 20, wait: '7d', approval: 'manual' }, { percentage: 100 }],
      });
      expect(await f.connect(f.devices.keys())).toHaveLength(2);
      await f.tick();
      expect((await show(f, r.id)).current_phase).toBe(0); // soaking for a week
      await command(f, r.id, 'promote');
      expect(await f.connect(f.devices.keys())).toHaveLength(8);
      await f.tick();
      const done = await show(f, r.id);
      expect(done.state).toBe('completed');
      expect(done.phases[0]!.gate).toMatchObject({ decision: 'pass', reason: 'promoted by an operator' });
      await expect(command(f, r.id, 'promote')).rejects.toThrow(/409/);
    });

    it('promote on a rollout in its last phase or of another strategy is refused with 409 and changes nothing', async () => {
      const f = await onlineFleet(db, 4);
      const last = await create(f, { name: 'one', ...base, phases: [{ percentage: 100 }] });
      await expect(command(f, last.id, 'promote')).rejects.toThrow(/409 .*last phase/);
      const now = await create(f, {
        name: 'now',
        release: 'fw@2.0.0',
        filter: '',
        strategy: 'rolling',
        batch_size: 2,
      });
      await expect(command(f, now.id, 'promote')).rejects.toThrow(/409 .*only progressive and blue_green/);
      expect((await show(f, last.id)).current_phase).toBe(0);
    });
  });
});
