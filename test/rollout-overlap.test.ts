/**
 * Overlapping rollouts: a target waiting in another open rollout gets the outcome the new spec's `overlap`
 * chose — taken over (newest_wins, or a higher priority), kept where it is, or nothing created (refuse) — shown
 * by the dry run as a conflict with counts. The real API, store and engine, on each database.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PlanJson } from '../src/protocol/rollouts.js';
import { VirtualFleet } from '../src/sim/virtual-fleet.js';
import { create, devicesIn, syntheticFleet } from './support/rollouts.js';
import { forEachDatabase } from './support/stores.js';

let fleet: VirtualFleet | undefined;
afterEach(async () => {
  await fleet?.close();
  fleet = undefined;
});

/** 6 devices waiting (never connected) in rollout "first" of priority 5; a 3.0.0 release to roll out next. */
async function overlapping(db: string | undefined) {
  fleet = await VirtualFleet.create({ start: Date.parse('2026-01-05T12:00:00Z'), db });
  await fleet.importFleet(syntheticFleet(10, { tags: (i) => ({ group: i < 6 ? 'a' : 'b' }) }));
  await fleet.release('fw', '2.0.0', ['hw-a']);
  await fleet.release('fw', '3.0.0', ['hw-a']);
  const first = await create(fleet, {
    name: 'first',
    release: 'fw@2.0.0',
    filter: 'tag.group = a',
    strategy: 'immediate',
    priority: 5,
  });
  return { f: fleet, first };
}

const next = (overlap: Record<string, unknown>) => ({
  name: 'second',
  release: 'fw@3.0.0',
  filter: '',
  strategy: 'immediate',
  ...overlap,
});

forEachDatabase((database) => {
  let db: string | undefined;
  beforeEach(async () => {
    db = await database.fresh();
  });

  describe('overlapping rollouts', () => {
    it('newest_wins (the default) takes the waiting devices over; the dry run counts them first', async () => {
      const { f, first } = await overlapping(db);
      const dry = await f.api<PlanJson>('POST', '/api/v1/rollouts?dry_run=true', next({}));
      expect(dry.conflicts).toEqual([
        { rollout_id: first.id, name: 'first', priority: 5, devices: 6, outcome: 'superseded' },
      ]);
      const second = await create(f, next({}));
      expect(second.totals.targets).toBe(10);
      expect(await devicesIn(f, first.id, 'cancelled')).toHaveLength(6);
    });

    it('priority: a lower or equal priority leaves them where they are, a higher one takes them', async () => {
      const { f, first } = await overlapping(db);
      const low = next({ overlap: 'priority', priority: 5 });
      const dry = await f.api<PlanJson>('POST', '/api/v1/rollouts?dry_run=true', low);
      expect(dry.conflicts.map((c) => [c.devices, c.outcome])).toEqual([[6, 'kept']]);
      expect(dry.targets).toBe(4);
      expect(dry.skipped[0]!.reason).toBe(`waits in rollout ${first.id} of priority 5 (this one: 5)`);
      const second = await create(f, low);
      expect(second.totals.targets).toBe(4);
      expect(await devicesIn(f, first.id, 'pending')).toHaveLength(6);

      const high = await create(f, { ...next({ overlap: 'priority', priority: 6 }), name: 'third' });
      expect(high.totals.targets).toBe(10);
      expect(await devicesIn(f, first.id, 'cancelled')).toHaveLength(6);
    });

    it('refuse: the dry run shows the conflict, create answers 409 and writes nothing', async () => {
      const { f, first } = await overlapping(db);
      const spec = next({ overlap: 'refuse' });
      const dry = await f.api<PlanJson>('POST', '/api/v1/rollouts?dry_run=true', spec);
      expect(dry.conflicts.map((c) => [c.rollout_id, c.devices, c.outcome])).toEqual([
        [first.id, 6, 'refused'],
      ]);
      await expect(create(f, spec)).rejects.toThrow(
        new RegExp(`409 .*"code":"CONFLICT".*overlap: 6 targets wait in other open rollouts \\(${first.id} `),
      );
      const all = await f.api<{ rollouts: Array<{ id: string }> }>('GET', '/api/v1/rollouts');
      expect(all.rollouts.map((r) => r.id)).toEqual([first.id]);
      expect(await devicesIn(f, first.id, 'pending')).toHaveLength(6);
      // Without overlapping targets, refuse creates as usual.
      const apart = await create(f, { ...spec, name: 'apart', filter: 'tag.group = b' });
      expect(apart.totals.targets).toBe(4);
    });
  });
});
