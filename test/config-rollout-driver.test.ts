/**
 * The configuration rollout driver on every store backend with two replicas: one replica steps a rollout while
 * its lease holds, the other takes it over once the lease lapsed, and a step of the replica that lost the lease
 * writes nothing. A rollout whose staged version was dropped by hand ends cancelled at its next step.
 */
import { beforeEach, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { parsePhaseList } from '../src/core/config-rollout.js';
import { DEFAULT_THRESHOLDS } from '../src/core/device.js';
import { ConfigRolloutDriver } from '../src/engine/config-rollout-driver.js';
import type { SqlStore } from '../src/store/sql-store.js';
import type { TimeContext } from '../src/store/store.js';
import { forEachBackend } from './support/stores.js';

const IDS = ['pos-1', 'pos-2', 'pos-3', 'pos-4'];
const LEASE_MS = 30_000;

forEachBackend((backend) => {
  let store: SqlStore;
  let clock: ManualClock;
  const ctx = (): TimeContext => ({ now: clock.now(), thresholds: DEFAULT_THRESHOLDS });
  const driver = (owner: string) =>
    new ConfigRolloutDriver(store, clock, DEFAULT_THRESHOLDS, { owner, leaseMs: LEASE_MS });

  beforeEach(async () => {
    clock = new ManualClock(Date.parse('2026-12-01T12:00:00Z'));
    store = await backend.open();
    await store.importDevices(
      IDS.map((id) => ({ id })),
      ctx(),
      'test',
    );
    const doc = (document: Record<string, number>) => ({
      name: 'base',
      document,
      target: { kind: 'fleet' as const },
      scope: null,
    });
    await store.config.set(doc({ a: 1 }), ctx(), 'test');
    await store.config.stage(doc({ a: 2 }), ctx(), 'test');
  });

  const start = () =>
    store.configRollouts.create(
      'base',
      2,
      { phases: parsePhaseList('1,100%'), soakMs: 0, maxFailureRate: 0, promote: false },
      null,
      ctx(),
      'test',
    );
  const applyReleased = async () => {
    const offers = await store.config.offers(IDS, ctx());
    for (const id of IDS) {
      const o = offers.get(id);
      if (o?.version === 'base@2') await store.config.report(id, { ...o, result: 'applied' }, ctx());
    }
  };
  const released = async () => (await store.config.staged('base'))?.progress.released;

  it('is stepped by one replica at a time; the other takes it over when the lease lapsed', async () => {
    await start();
    const a = driver('replica-a');
    const b = driver('replica-b');
    await a.advanceConfigRollouts();
    expect(await released()).toBe(1);
    await applyReleased();
    clock.advance(1_000);
    // B finds the rollout leased to A: nothing happens.
    await b.advanceConfigRollouts();
    expect(await released()).toBe(1);
    expect((await store.configRollouts.latest('base'))?.phase).toBe(0);

    clock.advance(LEASE_MS);
    await b.advanceConfigRollouts();
    expect(await released()).toBe(4);
    const r = (await store.configRollouts.latest('base'))!;
    expect(r.phase).toBe(1);
    // A, late, decides on what it read: refused, nothing written.
    const stale = await store.configRollouts.transition(
      r.id,
      { from: ['running'], state: 'halted', reason: 'late', event: { type: 'config.rollout.halted' } },
      ctx(),
      'engine',
      'replica-a',
    );
    expect(stale).toBeUndefined();
    expect((await store.configRollouts.latest('base'))?.state).toBe('running');

    await applyReleased();
    clock.advance(1_000);
    await b.advanceConfigRollouts();
    expect(await store.configRollouts.latest('base')).toMatchObject({
      state: 'completed',
      finalCounts: [
        { released: 1, applied: 1, failed: 0 },
        { released: 3, applied: 3, failed: 0 },
      ],
    });
    // Completed without --promote: still staged, released to every device.
    expect((await store.config.staged('base'))?.progress).toEqual({ released: 4, applied: 4, failed: 0 });
  });

  it('ends cancelled when its staged version was dropped by hand', async () => {
    await start();
    await driver('replica-a').advanceConfigRollouts();
    await store.config.unstage('base', null, ctx(), 'test');
    await driver('replica-a').advanceConfigRollouts();
    expect(await store.configRollouts.latest('base')).toMatchObject({
      state: 'cancelled',
      reason: 'staged version 2 is no longer staged (promoted, dropped or replaced)',
    });
    // The document may be rolled out again once staged again.
    await store.config.stage(
      { name: 'base', document: { a: 3 }, target: { kind: 'fleet' }, scope: null },
      ctx(),
      'test',
    );
    await expect(
      store.configRollouts.create(
        'base',
        2,
        { phases: parsePhaseList('100%'), soakMs: 0, maxFailureRate: 0, promote: false },
        null,
        ctx(),
        'test',
      ),
    ).resolves.toMatchObject({ state: 'running' });
  });
});
