/**
 * Rollout leases spread over the replicas, on each backend: several engines (one store handle each, as replicas
 * on one database) ticking in turn under one injected clock. Each holds its fair share, ceil(open rollouts /
 * live replicas); a replica that stops ticking (killed) drops out once its lease time has passed, and the
 * others take its rollouts over on their next tick. Within one round of ticks a rollout is driven by at most
 * one replica.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { DEFAULT_THRESHOLDS } from '../src/core/device.js';
import { OPEN_ROLLOUT_STATES } from '../src/core/rollout/rollout-state.js';
import { parseRolloutSpec } from '../src/core/rollout/spec.js';
import { RolloutEngine } from '../src/engine/rollout-engine.js';
import { createRollout } from '../src/engine/rollout-service.js';
import type { SqlStore } from '../src/store/sql-store.js';
import { forEachBackend, testRelease } from './support/stores.js';

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const LEASE_MS = 30_000;
const TICK_MS = 5_000;
const ROLLOUTS = 9;

/** Who reconciled which rollout, for "never driven twice in one round". */
interface Drive {
  round: number;
  replica: string;
  rollout: string;
}

/** An engine that notes each rollout it drives; otherwise the real one. */
class ObservedEngine extends RolloutEngine {
  constructor(
    store: SqlStore,
    clock: ManualClock,
    readonly name: string,
    private readonly drives: Drive[],
    private readonly round: () => number,
    warnings: unknown[],
  ) {
    super(store, clock, DEFAULT_THRESHOLDS, {
      owner: name,
      leaseMs: LEASE_MS,
      log: {
        error: (obj) => {
          throw new Error(`engine ${name} failed: ${JSON.stringify(obj)}`);
        },
        warn: (obj) => warnings.push(obj),
      },
    });
  }

  override async reconcile(id: string): Promise<void> {
    this.drives.push({ round: this.round(), replica: this.name, rollout: id });
    await super.reconcile(id);
  }
}

const START = NOW + ROLLOUTS;
/** Rollout i starts at START + (i + 1) × 2 ticks: before, during and after a replica's death. */
const startOf = (i: number) => START + (i + 1) * 2 * TICK_MS;

/**
 * Nine scheduled rollouts, each to two devices of its own (so none supersedes another's updates). Their starts
 * are spread over the test: `rollout.started` once each shows no start was decided twice.
 */
async function openRollouts(store: SqlStore): Promise<string[]> {
  const ctx = { now: NOW, thresholds: DEFAULT_THRESHOLDS };
  await store.releases.create(testRelease('rel_1', '2.0.0', NOW), 'test');
  await store.importDevices(
    Array.from({ length: ROLLOUTS * 2 }, (_, i) => ({
      id: `d-${String(i).padStart(2, '0')}`,
      hardwareType: 'hw-a',
      firmwareVersion: '1.0.0',
      tags: { group: `g${i % ROLLOUTS}` },
    })),
    ctx,
    'test',
  );
  const ids: string[] = [];
  for (let i = 0; i < ROLLOUTS; i++) {
    const spec = parseRolloutSpec({
      name: `r${i}`,
      release: 'fw@2.0.0',
      filter: `tag.group = g${i}`,
      strategy: 'immediate',
      scheduled_at: new Date(startOf(i)).toISOString(),
    });
    ids.push((await createRollout(store, spec, { ...ctx, now: NOW + i }, 'test')).rollout.id);
  }
  return ids;
}

/** The holder of each open rollout whose lease is live at `now` (null: nobody). */
async function holders(store: SqlStore, now: number): Promise<Map<string, string | null>> {
  const rows = await store.db
    .selectFrom('rollouts')
    .select(['id', 'lease_owner', 'lease_until'])
    .where('state', 'in', [...OPEN_ROLLOUT_STATES])
    .execute();
  return new Map(
    rows.map((r) => [r.id, r.lease_until !== null && Number(r.lease_until) >= now ? r.lease_owner : null]),
  );
}

function countBy(held: Map<string, string | null>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const owner of held.values()) counts[owner ?? 'nobody'] = (counts[owner ?? 'nobody'] ?? 0) + 1;
  return counts;
}

forEachBackend((backend) => {
  describe('rollout leases spread over replicas', () => {
    async function setUp() {
      const stores = await backend.openMany(3);
      const ids = await openRollouts(stores[0]!);
      const clock = new ManualClock(START);
      const drives: Drive[] = [];
      const warnings: unknown[] = [];
      let round = 0;
      const engines = stores.map(
        (store, i) => new ObservedEngine(store, clock, `replica-${i}`, drives, () => round, warnings),
      );
      /** One round: each engine given ticks once, in turn (or all at once), then time moves on by one tick. */
      const tickRound = async (ticking: ObservedEngine[], together = false) => {
        round++;
        if (together) await Promise.all(ticking.map((engine) => engine.tick()));
        else for (const engine of ticking) await engine.tick();
        clock.advance(TICK_MS);
      };
      const drivenTwice = () => {
        const seen = new Map<string, string>();
        const twice: Drive[] = [];
        for (const d of drives) {
          const key = `${d.round}/${d.rollout}`;
          if (seen.has(key) && seen.get(key) !== d.replica) twice.push(d);
          seen.set(key, d.replica);
        }
        return twice;
      };
      return { stores, ids, clock, engines, drives, warnings, tickRound, drivenTwice };
    }

    it('3 replicas and 9 rollouts: each holds exactly 3 after two rounds, and keeps them (no flapping)', async () => {
      const { stores, ids, clock, engines, warnings, tickRound, drivenTwice } = await setUp();
      // The first replica to tick sees no other yet and takes all nine; the others announce themselves on
      // their first tick, so on the second round it hands back six and each of the others takes three.
      await tickRound(engines);
      await tickRound(engines);
      const settled = await holders(stores[0]!, clock.now());
      expect([...settled.keys()].sort()).toEqual([...ids].sort());
      expect(countBy(settled)).toEqual({ 'replica-0': 3, 'replica-1': 3, 'replica-2': 3 });
      while (clock.now() <= startOf(ROLLOUTS - 1)) await tickRound(engines);
      expect(await holders(stores[1]!, clock.now())).toEqual(settled);
      // Every rollout was started once, by one replica, and never driven by two in one round.
      const started = await stores[0]!.listEvents({ typePrefix: 'rollout.started', limit: 100 });
      expect(started.map((e) => e.rolloutId).sort()).toEqual([...ids].sort());
      expect(drivenTwice()).toEqual([]);
      expect(warnings).toEqual([]);
    });

    it('a replica killed mid-rollout: the two survivors hold all 9 once its lease time has passed', async () => {
      const { stores, ids, clock, engines, drives, warnings, tickRound, drivenTwice } = await setUp();
      for (let i = 0; i < 3; i++) await tickRound(engines);
      expect(countBy(await holders(stores[0]!, clock.now()))).toEqual({
        'replica-0': 3,
        'replica-1': 3,
        'replica-2': 3,
      });
      // replica-2 dies: it stops ticking, without giving anything back (no stop()).
      const survivors = [engines[0]!, engines[1]!];
      const lastTickOfDead = clock.now() - TICK_MS;
      // Within its lease time its rollouts stay its own: nobody else drives them.
      while (clock.now() <= lastTickOfDead + LEASE_MS) {
        await tickRound(survivors);
        const held = countBy(await holders(stores[1]!, clock.now() - TICK_MS));
        expect(held['replica-0']).toBe(3);
        expect(held['replica-1']).toBe(3);
      }
      // The first round after it: the survivors share all nine, ceil(9 / 2) = 5 at most each.
      await tickRound(survivors);
      const takenOver = await holders(stores[0]!, clock.now());
      expect([...takenOver.keys()].sort()).toEqual([...ids].sort());
      expect([...takenOver.values()].filter((owner) => owner === null)).toEqual([]);
      const counts = countBy(takenOver);
      expect(Object.keys(counts).sort()).toEqual(['replica-0', 'replica-1']);
      expect(counts['replica-0']! + counts['replica-1']!).toBe(9);
      expect(Math.max(counts['replica-0']!, counts['replica-1']!)).toBeLessThanOrEqual(5);
      // And it stays that way.
      while (clock.now() <= startOf(ROLLOUTS - 1)) await tickRound(survivors);
      expect(await holders(stores[1]!, clock.now())).toEqual(takenOver);
      // The dead replica's rollouts were driven on by the survivors, never by two replicas in one round.
      const lastRound = Math.max(...drives.map((d) => d.round));
      const lastDriven = drives.filter((d) => d.round === lastRound).map((d) => d.rollout);
      expect(lastDriven.sort()).toEqual([...ids].sort());
      const started = await stores[0]!.listEvents({ typePrefix: 'rollout.started', limit: 100 });
      expect(started.map((e) => e.rolloutId).sort()).toEqual([...ids].sort());
      expect(drivenTwice()).toEqual([]);
      expect(warnings).toEqual([]);
      expect((await stores[0]!.replicas.live(clock.now())).map((r) => r.name)).toEqual([
        'replica-0',
        'replica-1',
      ]);
    });

    // PostgreSQL only: SQLite runs one writer at a time, and handles in one process would wait on each other's
    // open transaction with the event loop blocked (replicas on SQLite are separate processes).
    it.runIf(backend.dialect === 'postgres')(
      'replicas ticking at the same moment settle on 3 each and never drive a rollout twice',
      async () => {
        const { stores, ids, clock, engines, warnings, tickRound, drivenTwice } = await setUp();
        // Which replica counts the others first is a race here: whoever takes too many hands the rest back.
        for (let i = 0; i < 4; i++) await tickRound(engines, true);
        const settled = await holders(stores[0]!, clock.now());
        expect(countBy(settled)).toEqual({ 'replica-0': 3, 'replica-1': 3, 'replica-2': 3 });
        while (clock.now() <= startOf(ROLLOUTS - 1)) await tickRound(engines, true);
        expect(await holders(stores[2]!, clock.now())).toEqual(settled);
        const started = await stores[0]!.listEvents({ typePrefix: 'rollout.started', limit: 100 });
        expect(started.map((e) => e.rolloutId).sort()).toEqual([...ids].sort());
        expect(drivenTwice()).toEqual([]);
        expect(warnings).toEqual([]);
      },
    );

    it('a replica that stops cleanly hands its share over on the survivors’ next tick', async () => {
      const { stores, ids, clock, engines, tickRound } = await setUp();
      for (let i = 0; i < 3; i++) await tickRound(engines);
      await engines[2]!.stop();
      await tickRound([engines[0]!, engines[1]!]);
      const held = await holders(stores[0]!, clock.now());
      expect([...held.keys()].sort()).toEqual([...ids].sort());
      const counts = countBy(held);
      expect(counts.nobody).toBeUndefined();
      expect(counts['replica-0']! + counts['replica-1']!).toBe(9);
    });
  });
});
