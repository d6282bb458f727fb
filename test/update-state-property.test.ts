/**
 * The one state writer, checked from outside: random sequences of what operators, devices and the engine do
 * (assign, rollouts, offers, reports of any state, cancel, retries, time-outs, phase starts, the end of a
 * rollout, decommissioning, the sweep) against the real store. After every command, every update that changed
 * state made a move the table of core/update-state.ts allows, and no device holds two open updates. Seeded.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_THRESHOLDS } from '../src/core/device.js';
import { ROLLOUT_STATES } from '../src/core/rollout/rollout-state.js';
import { parseRolloutSpec } from '../src/core/rollout/spec.js';
import {
  DEVICE_REPORTED_STATES,
  isAllowed,
  OPEN_STATES,
  type UpdateState,
} from '../src/core/update-state.js';
import { createRollout } from '../src/engine/rollout-service.js';
import type { SqlStore } from '../src/store/sql-store.js';
import { openSqliteStore } from '../src/store/sqlite/connect.js';
import type { TimeContext } from '../src/store/store.js';
import { testRelease } from './support/stores.js';

const START = Date.UTC(2026, 3, 6, 10);
const DEVICES = 5;
const dev = (i: number) => `d-${i}`;
const ctxAt = (now: number): TimeContext => ({ now, thresholds: DEFAULT_THRESHOLDS });
const POLICY = { attempts: 3, backoffMs: 0, factor: 1, maxBackoffMs: 0 };

type Command =
  | { kind: 'assign'; devices: number[]; version: '2.0.0' | '3.0.0' }
  | { kind: 'rollout'; version: '2.0.0' | '3.0.0'; phased: boolean }
  | { kind: 'offer'; devices: number[] }
  | { kind: 'report'; i: number; state: (typeof DEVICE_REPORTED_STATES)[number] }
  | { kind: 'cancel'; pick: number }
  | { kind: 'retry'; pick: number }
  | { kind: 'timeOut'; pick: number }
  | { kind: 'nextPhase'; pick: number }
  | { kind: 'endRollout'; pick: number; to: 'skipped' | 'cancelled'; alsoStarted: boolean }
  | { kind: 'decommission'; i: number }
  | { kind: 'sweep' }
  | { kind: 'advance'; ms: number };

const device = fc.integer({ min: 0, max: DEVICES - 1 });
const devices = fc.uniqueArray(device, { minLength: 1, maxLength: DEVICES });
const version = fc.constantFrom('2.0.0' as const, '3.0.0' as const);
const pick = fc.nat({ max: 20 });

const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('assign' as const), devices, version }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('rollout' as const), version, phased: fc.boolean() }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('offer' as const), devices }) },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('report' as const),
      i: device,
      state: fc.constantFrom(...DEVICE_REPORTED_STATES),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cancel' as const), pick }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('retry' as const), pick }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('timeOut' as const), pick }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('nextPhase' as const), pick }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('endRollout' as const),
      pick,
      to: fc.constantFrom('skipped' as const, 'cancelled' as const),
      alsoStarted: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('decommission' as const), i: device }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('sweep' as const) }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.constantFrom(1_000, 3_600_000) }),
  },
);

interface Run {
  store: SqlStore;
  now: number;
  seq: number;
  rollouts: string[];
}

async function updateRows(store: SqlStore) {
  return store.db
    .selectFrom('device_updates as u')
    .innerJoin('devices as d', 'd.id', 'u.device_id')
    .select(['u.id', 'u.device_id', 'u.state', 'u.created_at', 'd.decommissioned_at'])
    .orderBy('u.created_at')
    .orderBy('u.id')
    .execute();
}

async function newestUpdate(store: SqlStore, deviceId: string): Promise<string> {
  const rows = await store.db
    .selectFrom('device_updates')
    .select('id')
    .where('device_id', '=', deviceId)
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(1)
    .execute();
  return rows[0]?.id ?? 'upd_none';
}

async function anyUpdate(store: SqlStore, n: number): Promise<string | undefined> {
  const rows = await store.db.selectFrom('device_updates').select('id').orderBy('id').execute();
  return rows.length === 0 ? undefined : rows[n % rows.length]!.id;
}

async function run(r: Run, c: Command): Promise<void> {
  const { store } = r;
  const ctx = ctxAt(r.now);
  const rollout = (n: number) => (r.rollouts.length === 0 ? undefined : r.rollouts[n % r.rollouts.length]);
  switch (c.kind) {
    case 'assign':
      await store.updates.assign(c.devices.map(dev), `rel-${c.version}`, { action: 'install' }, ctx, 'op');
      return;
    case 'rollout': {
      const spec = parseRolloutSpec({
        name: `r${r.rollouts.length}`,
        release: `fw@${c.version}`,
        filter: '',
        seed: 5,
        ...(c.phased
          ? { strategy: 'progressive', phases: [{ percentage: 40 }, { percentage: 100 }] }
          : { strategy: 'immediate' }),
      });
      r.rollouts.push((await createRollout(store, spec, ctx, 'op')).rollout.id);
      return;
    }
    case 'offer':
      await store.updates.offer(c.devices.map(dev), ctx);
      return;
    case 'report': {
      const deviceId = dev(c.i);
      const updateId = await newestUpdate(store, deviceId);
      await store.updates.report(deviceId, updateId, { seq: ++r.seq, state: c.state }, ctx);
      return;
    }
    case 'cancel': {
      const id = await anyUpdate(store, c.pick);
      if (id !== undefined) await store.updates.cancel(id, ctx, 'op');
      return;
    }
    case 'retry': {
      const id = rollout(c.pick);
      if (id !== undefined) await store.rollouts.retryFailed(id, POLICY, ctx);
      return;
    }
    case 'timeOut': {
      const id = rollout(c.pick);
      if (id !== undefined) await store.rollouts.timeOut(id, r.now, ctx);
      return;
    }
    case 'nextPhase': {
      const id = rollout(c.pick);
      if (id !== undefined) await store.rollouts.update(id, ROLLOUT_STATES, {}, [], ctx, { releasePhase: 1 });
      return;
    }
    case 'endRollout': {
      const id = rollout(c.pick);
      if (id === undefined) return;
      const endWaiting = { to: c.to, reason: 'ended by test', alsoStarted: c.alsoStarted, actor: 'op' };
      await store.rollouts.update(id, ROLLOUT_STATES, {}, [], ctx, { endWaiting });
      return;
    }
    case 'decommission':
      await store.decommissionDevice(dev(c.i), ctx, 'op');
      return;
    case 'sweep':
      await store.sweepStatuses(ctx);
      return;
    case 'advance':
      r.now += c.ms;
      return;
  }
}

/** Refusals are answers (a report the table does not allow, a cancel of a final update): not failures. */
async function attempt(r: Run, c: Command): Promise<void> {
  try {
    await run(r, c);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === 'TRANSITION_NOT_ALLOWED' || code === 'NOT_FOUND') return;
    throw error;
  }
}

for (const native of [true, false]) {
  describe(native ? 'native SQLite' : 'shared SQL on SQLite', () => {
    it('random commands never make an illegal update move nor leave a device two open updates', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 30 }), async (commands) => {
          const store = await openSqliteStore(':memory:', { native });
          try {
            await store.importDevices(
              Array.from({ length: DEVICES }, (_, i) => ({
                id: dev(i),
                hardwareType: 'hw-a',
                firmwareVersion: '1.0.0',
              })),
              ctxAt(START),
              'op',
            );
            await store.releases.create(testRelease('rel-2.0.0', '2.0.0', START), 'op');
            await store.releases.create(testRelease('rel-3.0.0', '3.0.0', START), 'op');
            const r: Run = { store, now: START, seq: 0, rollouts: [] };
            let before = new Map((await updateRows(store)).map((u) => [u.id, u.state as UpdateState]));
            for (const c of commands) {
              await attempt(r, c);
              const rows = await updateRows(store);
              for (const u of rows) {
                const from = before.get(u.id);
                if (from === undefined || from === u.state) continue;
                const rule = u.decommissioned_at === null ? 'normal' : 'decommission';
                expect(
                  isAllowed(from, u.state, 'normal') || isAllowed(from, u.state, rule),
                  `${JSON.stringify(c)}: ${u.id} ${from} → ${u.state}`,
                ).toBe(true);
              }
              const open = rows.filter((u) => OPEN_STATES.includes(u.state)).map((u) => u.device_id);
              expect(open.length, `${JSON.stringify(c)}: open updates ${open.join(',')}`).toBe(
                new Set(open).size,
              );
              before = new Map(rows.map((u) => [u.id, u.state]));
            }
          } finally {
            await store.close();
          }
        }),
        { numRuns: 100, seed: 14_003 },
      );
    }, 60_000);
  });
}
