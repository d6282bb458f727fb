/**
 * The rollout engine end to end on a fake clock: the real API, store and engine (VirtualFleet), devices that
 * speak the real device protocol. Every strategy and policy, time-zone and DST boundaries, gates just above
 * and below their threshold, concurrency under contention, operator commands and restarts.
 */
import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { localDateTime } from '../src/core/rollout/zone.js';
import { VirtualFleet } from '../src/sim/virtual-fleet.js';
import type { SqlStore } from '../src/store/sql-store.js';
import {
  command,
  create,
  devicesIn,
  events,
  grants,
  HOUR,
  MINUTE,
  show,
  syntheticFleet,
} from './support/rollouts.js';
import { expectCountsInStep, forEachDatabase } from './support/stores.js';

const POS = JSON.parse(readFileSync(new URL('../examples/pos-fleet.json', import.meta.url), 'utf8'));
const POS_NOW = Date.parse('2024-10-20T14:25:00Z');
const ONLINE = [
  'pos-atlanta-001',
  'pos-chicago-001',
  'pos-la-001',
  'pos-nyc-001',
  'pos-nyc-002',
  'pos-phoenix-001',
];

let fleet: VirtualFleet;
/** The database of the test running now: a fresh schema on PostgreSQL, the fleet's own file on SQLite. */
let db: string | undefined;
afterEach(async () => {
  if (!fleet) return;
  // Whatever the test did, SQLite's trigger-kept counts must equal a count of the rows themselves.
  await expectCountsInStep(fleet.parts.store as SqlStore);
  await fleet.close();
});

async function posFleet() {
  fleet = await VirtualFleet.create({ start: POS_NOW, db });
  await fleet.importFleet(POS);
  await fleet.release('pos-fw', '2.4.0', ['pos-x100', 'pos-x200']);
}

/** A synthetic fleet whose devices have all heartbeated once (online). */
async function onlineFleet(count: number, options: Parameters<typeof syntheticFleet>[1] = {}) {
  fleet = await VirtualFleet.create({ start: Date.parse('2026-01-05T12:00:00Z'), db });
  await fleet.importFleet(syntheticFleet(count, options));
  await fleet.release('fw', '1.0.0', ['hw-a', 'hw-b']);
  await fleet.release('fw', '2.0.0', ['hw-a', 'hw-b']);
  for (const d of fleet.devices.values()) await d.heartbeat();
}

const ids = (n: number, prefix = 'dev') =>
  Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(4, '0')}`);

// The whole suite runs on each database: the engine's decisions must not depend on the dialect.
forEachDatabase((database) => {
  beforeEach(async () => {
    db = await database.fresh();
  });

  describe('immediate', () => {
    beforeEach(posFleet);

    it('updates online devices now and queues offline ones until they connect', async () => {
      const r = await create(fleet, {
        name: 'patch',
        release: 'pos-fw@2.4.0',
        filter: '',
        strategy: 'immediate',
      });
      expect(r.totals.targets).toBe(10);
      const done = await fleet.connect(ONLINE);
      expect(done.map((d) => d.deviceId).sort()).toEqual(ONLINE);
      await fleet.tick();
      expect((await show(fleet, r.id)).state).toBe('running'); // 4 devices still to come
      fleet.advance(6 * HOUR);
      expect((await fleet.connect(['pos-seattle-001']))[0]?.state).toBe('succeeded');
      await fleet.connect(['pos-boston-001', 'pos-miami-001', 'pos-denver-001']);
      await fleet.tick();
      const after = await show(fleet, r.id);
      expect(after.state).toBe('completed');
      expect(after.totals.counts).toEqual({ succeeded: 10 });
    });

    it('with offline: skip, leaves offline and never-seen devices out (seed 001, scenario 1)', async () => {
      const r = await create(fleet, {
        name: 'cve',
        release: 'pos-fw@2.4.0',
        filter: '',
        strategy: 'immediate',
        offline: 'skip',
      });
      expect(r.totals.targets).toBe(6);
      expect(await devicesIn(fleet, r.id, 'skipped')).toEqual([
        'pos-boston-001',
        'pos-denver-001',
        'pos-miami-001',
        'pos-seattle-001',
      ]);
      await fleet.connect(ONLINE);
      await fleet.tick();
      expect((await show(fleet, r.id)).state).toBe('completed');
    });

    it('a region filter reaches exactly the 3 northeast terminals (seed 001, scenario 5)', async () => {
      const r = await create(fleet, {
        name: 'ny-ma tax',
        release: 'pos-fw@2.4.0',
        filter: 'tag.region=northeast',
        strategy: 'immediate',
      });
      expect(r.totals.targets).toBe(3);
      await fleet.connect([...fleet.devices.keys()]);
      await fleet.tick();
      expect(await devicesIn(fleet, r.id, 'succeeded')).toEqual([
        'pos-boston-001',
        'pos-nyc-001',
        'pos-nyc-002',
      ]);
      expect([...(await grants(fleet, r.id)).keys()].sort()).toEqual([
        'pos-boston-001',
        'pos-nyc-001',
        'pos-nyc-002',
      ]);
    });

    it('skips devices of another hardware type or already on the version, saying why', async () => {
      await fleet.release('pos-fw', '2.3.0', ['pos-x200']);
      const r = await create(fleet, {
        name: 'x200 only',
        release: 'pos-fw@2.3.0',
        filter: '',
        strategy: 'immediate',
      });
      const skipped = await fleet.api<{ updates: Array<{ device_id: string; error: string }> }>(
        'GET',
        `/api/v1/rollouts/${r.id}/updates?state=skipped`,
      );
      const reasons = Object.fromEntries(skipped.updates.map((u) => [u.device_id, u.error]));
      expect(reasons['pos-boston-001']).toBe('hardware pos-x100 is not one of pos-x200');
      expect(reasons['pos-nyc-002']).toBe('already runs 2.3.0');
    });
  });

  describe('scheduled: a maintenance window in each device’s own time zone', () => {
    it('starts each terminal at 2 AM in its own zone, none outside 02:00–04:00 (seed 001, scenario 6)', async () => {
      await posFleet();
      const r = await create(fleet, {
        name: 'old firmware',
        release: 'pos-fw@2.4.0',
        filter: 'firmware < 2.2.0',
        strategy: 'scheduled',
        window: { start: '02:00', end: '04:00', timezone: 'device' },
      });
      expect(r.totals.targets).toBe(5);
      const zones = Object.fromEntries(
        POS.devices.map((d: { id: string; timezone: string }) => [d.id, d.timezone]),
      );
      const started = new Map<string, number>();
      fleet.clock.set(Date.parse('2024-10-20T15:00:00Z'));
      // Every terminal checks in every 15 minutes for a day.
      for (let t = 0; t < 24 * 4; t++) {
        for (const d of await fleet.connect(fleet.devices.keys())) {
          if (d.rolloutId === r.id && !started.has(d.deviceId)) started.set(d.deviceId, fleet.now);
        }
        await fleet.tick();
        fleet.advance(15 * MINUTE);
      }
      expect([...started.keys()].sort()).toEqual([
        'pos-boston-001',
        'pos-chicago-001',
        'pos-denver-001',
        'pos-nyc-001',
        'pos-seattle-001',
      ]);
      for (const [id, at] of started) {
        const local = localDateTime(zones[id], at);
        expect({ id, hour: local.hour, minute: local.minute }).toEqual({ id, hour: 2, minute: 0 });
      }
      // 02:00 New York (EDT) is 06:00Z; Chicago 07:00Z; Denver 08:00Z; Seattle 09:00Z.
      expect(new Date(started.get('pos-nyc-001')!).toISOString()).toBe('2024-10-21T06:00:00.000Z');
      expect(new Date(started.get('pos-seattle-001')!).toISOString()).toBe('2024-10-21T09:00:00.000Z');
      expect((await show(fleet, r.id)).state).toBe('completed');
    });

    async function zonedFleet(start: string, zones: string[]) {
      fleet = await VirtualFleet.create({ start: Date.parse(start), db });
      await fleet.importFleet(syntheticFleet(zones.length, { timezone: (i) => zones[i]! }));
      await fleet.release('fw', '2.0.0', ['hw-a']);
    }

    /** Connects every device every 5 minutes until `until`; the instant each first started its update. */
    async function startTimes(rolloutId: string, until: number) {
      const started = new Map<string, number>();
      while (fleet.now <= until) {
        for (const d of await fleet.connect(fleet.devices.keys())) {
          if (d.rolloutId === rolloutId && !started.has(d.deviceId)) started.set(d.deviceId, fleet.now);
        }
        await fleet.tick();
        fleet.advance(5 * MINUTE);
      }
      return started;
    }

    it('across spring forward, 02:00–04:00 opens at 03:00 EDT in New York and 02:00 MST in Arizona', async () => {
      await zonedFleet('2024-03-10T04:00:00Z', ['America/New_York', 'America/Phoenix']);
      const r = await create(fleet, {
        name: 'dst',
        release: 'fw@2.0.0',
        filter: '',
        strategy: 'scheduled',
        window: { start: '02:00', end: '04:00' },
      });
      const started = await startTimes(r.id, Date.parse('2024-03-10T12:00:00Z'));
      expect(new Date(started.get('dev-0000')!).toISOString()).toBe('2024-03-10T07:00:00.000Z'); // 03:00 EDT
      expect(new Date(started.get('dev-0001')!).toISOString()).toBe('2024-03-10T09:00:00.000Z'); // 02:00 MST
    });

    it('across fall back, 01:00–01:30 is open only during the first 01:00 (EDT), not the repeated one', async () => {
      await zonedFleet('2024-11-03T05:35:00Z', ['America/New_York']); // 01:35 EDT: just after the first pass
      const r = await create(fleet, {
        name: 'dst-fall',
        release: 'fw@2.0.0',
        filter: '',
        strategy: 'scheduled',
        window: { start: '01:00', end: '01:30' },
      });
      // 06:00Z–06:30Z is 01:00–01:30 EST, the repeated hour: the window does not open again.
      const started = await startTimes(r.id, Date.parse('2024-11-03T12:00:00Z'));
      expect(started.size).toBe(0);
      const next = await startTimes(r.id, Date.parse('2024-11-04T07:00:00Z'));
      expect(new Date(next.get('dev-0000')!).toISOString()).toBe('2024-11-04T06:00:00.000Z'); // 01:00 EST
    });

    it('is scheduled until the first target’s window opens, then running from that instant (seed 000)', async () => {
      await zonedFleet('2026-06-01T10:00:00Z', ['Europe/Berlin', 'America/New_York']);
      const r = await create(fleet, {
        name: 'first-window',
        release: 'fw@2.0.0',
        filter: '',
        strategy: 'scheduled',
        window: { start: '02:00', end: '04:00' },
      });
      expect(r.state).toBe('scheduled');
      const held = (await fleet.device('dev-0000').heartbeat())[0]!;
      expect(held.retry_after).toBe(3600); // its window is 14 h away: the longest hint there is
      fleet.clock.set(Date.parse('2026-06-01T23:59:00Z'));
      await fleet.tick();
      expect((await show(fleet, r.id)).state).toBe('scheduled');
      fleet.clock.set(Date.parse('2026-06-02T00:00:30Z')); // 02:00:30 in Berlin
      await fleet.tick();
      const started = await show(fleet, r.id);
      expect(started.state).toBe('running');
      expect(started.started_at).toBe('2026-06-02T00:00:00.000Z');
    });

    it('missed_window: on_connect lets a device that missed its window update when it connects', async () => {
      await zonedFleet('2026-06-01T10:00:00Z', ['Europe/Berlin', 'Europe/Berlin']);
      const r = await create(fleet, {
        name: 'missed',
        release: 'fw@2.0.0',
        filter: '',
        strategy: 'scheduled',
        window: { start: '02:00', end: '03:00' },
        missed_window: 'on_connect',
      });
      // dev-0000 is there at 02:00 Berlin; dev-0001 only connects at noon the next day.
      fleet.clock.set(Date.parse('2026-06-02T00:10:00Z'));
      expect(await fleet.connect(['dev-0000'])).toHaveLength(1);
      fleet.clock.set(Date.parse('2026-06-02T10:00:00Z'));
      await fleet.tick();
      expect(await fleet.connect(['dev-0001'])).toHaveLength(1);
      await fleet.tick();
      expect((await show(fleet, r.id)).state).toBe('completed');
    });
  });

  describe('progressive', () => {
    const phases = [
      { name: 'canary', percentage: 10, wait: '24h', success_rate: 95 },
      { name: 'half', percentage: 50, wait: '12h', success_rate: 90 },
      { name: 'all', percentage: 100, success_rate: 85 },
    ];

    it('canary → 50% → 100%, each phase after its soak time, online canaries first, chosen by the seed', async () => {
      await onlineFleet(20);
      const dry = await fleet.api<{ phases: Array<{ devices: number; sample: string[] }> }>(
        'POST',
        '/api/v1/rollouts?dry_run=true',
        { name: 'fw2', release: 'fw@2.0.0', filter: '', strategy: 'progressive', phases, seed: 7 },
      );
      expect(dry.phases.map((p) => p.devices)).toEqual([2, 8, 10]);
      const r = await create(fleet, {
        name: 'fw2',
        release: 'fw@2.0.0',
        filter: '',
        strategy: 'progressive',
        phases,
        seed: 7,
      });
      const canaries = (await fleet.connect(fleet.devices.keys())).map((d) => d.deviceId).sort();
      expect(canaries).toEqual([...dry.phases[0]!.sample].sort()); // the dry run showed the real canaries
      fleet.advance(23 * HOUR);
      await fleet.tick();
      expect(await fleet.connect(fleet.devices.keys())).toHaveLength(0); // still soaking
      fleet.advance(HOUR);
      await fleet.tick();
      expect((await show(fleet, r.id)).current_phase).toBe(1);
      expect(await fleet.connect(fleet.devices.keys())).toHaveLength(8);
      fleet.advance(12 * HOUR);
      await fleet.tick();
      expect(await fleet.connect(fleet.devices.keys())).toHaveLength(10);
      await fleet.tick();
      const done = await show(fleet, r.id);
      expect(done.state).toBe('completed');
      expect(done.phases.map((p) => p.gate?.decision)).toEqual(['pass', 'pass', 'pass']);
      expect([...(await grants(fleet, r.id)).values()].every((n) => n === 1)).toBe(true);
    });

    it('a failing canary halts and rolls back the rollout: nothing spreads further (seed 001, scenario 3)', async () => {
      await onlineFleet(20);
      fleet.setOutcome(() => ({ kind: 'fail', error: 'boot loop' }));
      const r = await create(fleet, {
        name: 'bad',
        release: 'fw@2.0.0',
        filter: '',
        strategy: 'progressive',
        phases,
        retry: { attempts: 1 },
      });
      await fleet.connect(fleet.devices.keys());
      await fleet.tick();
      const halted = await show(fleet, r.id);
      expect(halted.state).toBe('rolled_back'); // the default for progressive rollouts
      expect(halted.reason).toMatch(/^canary: success rate/);
      fleet.advance(48 * HOUR);
      await fleet.tick();
      expect(await fleet.connect(fleet.devices.keys())).toHaveLength(0);
      expect((await grants(fleet, r.id)).size).toBe(2);
      expect(halted.failing.map((f) => f.error)).toEqual(['boot loop', 'boot loop']);
    });

    for (const [failures, expected] of [
      [1, 'passes'],
      [2, 'halts'],
    ] as const) {
      it(`a 90% gate with ${failures} failure(s) in 10 ${expected}`, async () => {
        await onlineFleet(20);
        const failing = new Set<string>();
        fleet.setOutcome((id) => (failing.has(id) ? { kind: 'fail', error: 'crash' } : { kind: 'succeed' }));
        const r = await create(fleet, {
          name: 'edge',
          release: 'fw@2.0.0',
          filter: '',
          strategy: 'progressive',
          phases: [
            { name: 'first half', percentage: 50, wait: '1h', success_rate: 90 },
            { name: 'rest', percentage: 100 },
          ],
          retry: { attempts: 1 },
          rollback_on_halt: false,
        });
        const firstHalf = (
          await fleet.api<{ updates: Array<{ device_id: string }> }>(
            'GET',
            `/api/v1/rollouts/${r.id}/updates?phase=0`,
          )
        ).updates.map((u) => u.device_id);
        for (const id of firstHalf.slice(0, failures)) failing.add(id);
        await fleet.connect(fleet.devices.keys());
        fleet.advance(HOUR);
        await fleet.tick();
        const after = await show(fleet, r.id);
        if (expected === 'passes') {
          expect(after.state).toBe('running');
          expect(after.current_phase).toBe(1);
          expect(after.phases[0]!.gate).toMatchObject({ decision: 'pass', success_rate: 90, threshold: 90 });
        } else {
          expect(after.state).toBe('halted');
          expect(after.phases[0]!.gate).toMatchObject({ decision: 'halt', success_rate: 80, threshold: 90 });
        }
      });
    }

    it('waits for an operator between phases with manual approval', async () => {
      await onlineFleet(10);
      const r = await create(fleet, {
        name: 'manual',
        release: 'fw@2.0.0',
        filter: '',
        strategy: 'progressive',
        phases: [{ percentage: 20, approval: 'manual' }, { percentage: 100 }],
      });
      await fleet.connect(fleet.devices.keys());
      await fleet.tick();
      const waiting = await show(fleet, r.id);
      expect(waiting.phases[0]!.gate?.decision).toBe('await_approval');
      expect(waiting.current_phase).toBe(0);
      await command(fleet, r.id, 'approve');
      await fleet.tick();
      expect((await show(fleet, r.id)).current_phase).toBe(1);
      expect(await fleet.connect(fleet.devices.keys())).toHaveLength(8);
    });

    it('rollback_on_halt returns the updated canaries to the version they had', async () => {
      await onlineFleet(20);
      let first = true;
      fleet.setOutcome(() => {
        const o = first
          ? { kind: 'succeed' as const }
          : { kind: 'roll_back' as const, error: 'health check failed: exit 1' };
        first = false;
        return o;
      });
      const r = await create(fleet, {
        name: 'undo',
        release: 'fw@2.0.0',
        filter: '',
        strategy: 'progressive',
        phases,
        rollback_on_halt: true,
      });
      const canaries = await fleet.connect(fleet.devices.keys());
      expect(canaries.map((c) => c.state).sort()).toEqual(['rolled_back', 'succeeded']);
      await fleet.tick();
      const after = await show(fleet, r.id);
      expect(after.state).toBe('rolled_back');
      const updated = canaries.find((c) => c.state === 'succeeded')!.deviceId;
      expect(fleet.device(updated).firmware).toBe('2.0.0');
      const back = await fleet.connect(fleet.devices.keys());
      expect(back).toEqual([
        expect.objectContaining({
          deviceId: updated,
          version: '1.0.0',
          action: 'install',
          state: 'succeeded',
        }),
      ]);
      expect(fleet.device(updated).firmware).toBe('1.0.0');
      expect((await show(fleet, r.id)).rollback).toEqual({ succeeded: 1 });
    });
  });

  describe('dispatch: slots, retries, timeouts', () => {
    it('never lets more than max_concurrent download at once, and frees a slot on the final report', async () => {
      await onlineFleet(10);
      const r = await create(fleet, {
        name: 'slots',
        release: 'fw@2.0.0',
        filter: '',
        strategy: 'immediate',
        max_concurrent: 3,
      });
      // Every device asks; none finishes yet.
      const answers = await Promise.all([...fleet.devices.values()].map((d) => d.heartbeat()));
      const granted = answers.flat().filter((u) => u.state === 'notified');
      const held = answers.flat().filter((u) => u.retry_after !== null);
      expect(granted).toHaveLength(3);
      expect(held).toHaveLength(7);
      expect(held.every((u) => u.retry_after! > 0)).toBe(true);
      // The three finish; the next three get the slots.
      const lucky = answers.flatMap((a, i) => (a.some((u) => u.state === 'notified') ? [ids(10)[i]!] : []));
      await fleet.connect(lucky);
      const next = (await Promise.all([...fleet.devices.values()].map((d) => d.heartbeat()))).flat();
      expect(next.filter((u) => u.state === 'notified')).toHaveLength(3);
      expect((await show(fleet, r.id)).totals.counts).toMatchObject({
        succeeded: 3,
        notified: 3,
        pending: 4,
      });
    });

    it('max_concurrent_per bounds each tag value separately', async () => {
      await onlineFleet(8, { tags: (i) => ({ region: i % 2 === 0 ? 'east' : 'west' }) });
      await create(fleet, {
        name: 'per-region',
        release: 'fw@2.0.0',
        filter: '',
        strategy: 'immediate',
        max_concurrent_per: { tag: 'region', limit: 1 },
      });
      const answers = (await Promise.all([...fleet.devices.values()].map((d) => d.heartbeat()))).flat();
      expect(answers.filter((u) => u.state === 'notified')).toHaveLength(2);
    });

    it('retries a failure after its backoff and marks the device failed when attempts are spent', async () => {
      await onlineFleet(1);
      fleet.setOutcome(() => ({ kind: 'fail', error: 'disk full' }));
      const r = await create(fleet, {
        name: 'retry',
        release: 'fw@2.0.0',
        filter: '',
        strategy: 'immediate',
        retry: { attempts: 3, backoff: '1m', factor: 2 },
      });
      expect(await fleet.connect(['dev-0000'])).toHaveLength(1);
      await fleet.tick();
      expect(await fleet.connect(['dev-0000'])).toHaveLength(0); // backing off for 1 minute
      fleet.advance(MINUTE);
      expect(await fleet.connect(['dev-0000'])).toHaveLength(1); // attempt 2
      await fleet.tick();
      fleet.advance(MINUTE);
      expect(await fleet.connect(['dev-0000'])).toHaveLength(0); // 2 minutes this time
      fleet.advance(MINUTE);
      expect(await fleet.connect(['dev-0000'])).toHaveLength(1); // attempt 3
      await fleet.tick();
      fleet.advance(HOUR);
      expect(await fleet.connect(['dev-0000'])).toHaveLength(0);
      await fleet.tick();
      const after = await show(fleet, r.id);
      expect(after.state).toBe('completed');
      expect(after.totals.counts).toEqual({ failed: 1 });
      expect((await events(fleet, r.id, 'update.pending')).map((e) => e.reason)).toEqual([
        'retry 2 of 3 after 60 s',
        'retry 3 of 3 after 120 s',
      ]);
    });

    it('an update in progress past its timeout fails and its slot goes to another device', async () => {
      await onlineFleet(2);
      const r = await create(fleet, {
        name: 'timeout',
        release: 'fw@2.0.0',
        filter: '',
        strategy: 'immediate',
        max_concurrent: 1,
        timeout: '30m',
        retry: { attempts: 1 },
      });
      const [a] = await fleet.device('dev-0000').heartbeat(); // takes the slot and goes silent
      expect(a?.state).toBe('notified');
      expect((await fleet.device('dev-0001').heartbeat())[0]?.retry_after).not.toBeNull();
      fleet.advance(30 * MINUTE);
      await fleet.tick();
      expect(await fleet.connect(['dev-0001'])).toHaveLength(1);
      const failed = await fleet.api<{ updates: Array<{ error: string }> }>(
        'GET',
        `/api/v1/rollouts/${r.id}/updates?state=failed`,
      );
      expect(failed.updates.map((u) => u.error)).toEqual(['timed out in progress']);
    });

    it('a release that fails on one hardware type only trips the abort criterion, naming those devices', async () => {
      await onlineFleet(12, { hardware: (i) => (i % 3 === 0 ? 'hw-b' : 'hw-a') });
      const hardware = Object.fromEntries(
        syntheticFleet(12, { hardware: (i) => (i % 3 === 0 ? 'hw-b' : 'hw-a') }).devices.map((d) => [
          d.id,
          d.hardware_type,
        ]),
      );
      fleet.setOutcome((id) =>
        hardware[id] === 'hw-b' ? { kind: 'fail', error: 'driver missing on hw-b' } : { kind: 'succeed' },
      );
      const r = await create(fleet, {
        name: 'hw',
        release: 'fw@2.0.0',
        filter: '',
        strategy: 'immediate',
        retry: { attempts: 1 },
        abort: { failure_rate: 20, min_finished: 6 },
      });
      await fleet.connect(fleet.devices.keys());
      await fleet.tick();
      const after = await show(fleet, r.id);
      expect(after.state).toBe('halted');
      expect(after.reason).toMatch(/^abort: 4 of 12 finished updates failed/);
      expect(after.failing.every((f) => hardware[f.device_id] === 'hw-b')).toBe(true);
    });
  });

  describe('policies', () => {
    it('rate: at most per_minute devices start each minute, growing by the factor after each N successes', async () => {
      await onlineFleet(20);
      await create(fleet, {
        name: 'rate',
        release: 'fw@2.0.0',
        filter: '',
        strategy: 'immediate',
        rate: { per_minute: 2, growth_factor: 2, after_successes: 2 },
      });
      const holding = new Set<string>();
      const granted = async () => {
        holding.clear();
        for (const d of fleet.devices.values()) {
          if ((await d.heartbeat()).some((u) => u.state === 'notified')) holding.add(d.id);
        }
        return holding.size;
      };
      fleet.clock.set(Date.parse('2026-01-05T12:01:00Z')); // the start of a clock minute
      expect(await granted()).toBe(2);
      expect(await granted()).toBe(2); // the minute's 2 are spent: nobody else starts
      fleet.advance(60_000);
      expect(await granted()).toBe(4); // 2 more in the next minute
      expect(await fleet.connect([...holding])).toHaveLength(4); // 4 successes: 2 × 2² = 8 a minute
      fleet.advance(60_000);
      expect(await granted()).toBe(8);
    });

    it('scheduled_at: nothing starts before, the rollout is scheduled until then', async () => {
      await onlineFleet(2);
      const r = await create(fleet, {
        name: 'later',
        release: 'fw@2.0.0',
        filter: '',
        strategy: 'immediate',
        scheduled_at: '2026-01-05T18:00:00Z',
      });
      expect(r.state).toBe('scheduled');
      const [held] = await fleet.device('dev-0000').heartbeat();
      expect(held).toBeUndefined(); // scheduled updates are not even listed yet
      fleet.clock.set(Date.parse('2026-01-05T18:00:00Z'));
      await fleet.tick();
      expect((await show(fleet, r.id)).state).toBe('running');
      expect(await fleet.connect(fleet.devices.keys())).toHaveLength(2);
    });

    it('end_at with stop: devices not started are skipped, the rollout completes', async () => {
      await onlineFleet(3);
      const r = await create(fleet, {
        name: 'until noon',
        release: 'fw@2.0.0',
        filter: '',
        strategy: 'immediate',
        end_at: '2026-01-05T13:00:00Z',
      });
      await fleet.connect(['dev-0000']);
      fleet.clock.set(Date.parse('2026-01-05T13:00:00Z'));
      await fleet.tick();
      expect(await fleet.connect(fleet.devices.keys())).toHaveLength(0);
      await fleet.tick();
      const after = await show(fleet, r.id);
      expect(after.state).toBe('completed');
      expect(after.totals.counts).toEqual({ succeeded: 1, skipped: 2 });
      await fleet.tick();
      expect(await events(fleet, r.id, 'rollout.ended')).toHaveLength(1); // decided once, not every tick
    });

    it('end_at with cancel: the rollout is cancelled and a download in progress is called off', async () => {
      await onlineFleet(2);
      const r = await create(fleet, {
        name: 'hard stop',
        release: 'fw@2.0.0',
        filter: '',
        strategy: 'immediate',
        end_at: '2026-01-05T13:00:00Z',
        end_action: 'cancel',
      });
      expect((await fleet.device('dev-0000').heartbeat())[0]?.state).toBe('notified'); // started, not finished
      fleet.clock.set(Date.parse('2026-01-05T13:00:00Z'));
      await fleet.tick();
      const after = await show(fleet, r.id);
      expect(after.state).toBe('cancelled');
      expect(after.totals.counts).toEqual({ cancelled: 2 });
    });

    it('download_only stages the release and switches nobody', async () => {
      await onlineFleet(2);
      const r = await create(fleet, {
        name: 'stage',
        release: 'fw@2.0.0',
        filter: '',
        strategy: 'immediate',
        action: 'download_only',
      });
      const staged = await fleet.connect(fleet.devices.keys());
      expect(staged.map((s) => s.action)).toEqual(['download_only', 'download_only']);
      expect([...fleet.devices.values()].map((d) => [d.staged, d.firmware])).toEqual([
        ['2.0.0', '1.0.0'],
        ['2.0.0', '1.0.0'],
      ]);
      await fleet.tick();
      expect((await show(fleet, r.id)).state).toBe('completed');
    });

    it('a soft rollout tells the device it may defer installing', async () => {
      await onlineFleet(1);
      await create(fleet, {
        name: 'soft',
        release: 'fw@2.0.0',
        filter: '',
        strategy: 'immediate',
        action: 'soft',
      });
      const [offer] = await fleet.device('dev-0000').heartbeat();
      expect(offer).toMatchObject({ state: 'notified', action: 'install', soft: true });
    });
  });

  describe('rolling, blue-green, on-connect', () => {
    it('rolling: the next batch starts when the previous one has finished', async () => {
      await onlineFleet(7);
      const r = await create(fleet, {
        name: 'roll',
        release: 'fw@2.0.0',
        filter: '',
        strategy: 'rolling',
        batch_size: 3,
      });
      expect(r.phases.map((p) => p.devices)).toEqual([3, 3, 1]);
      const first = await Promise.all([...fleet.devices.values()].map((d) => d.heartbeat()));
      expect(first.flat().filter((u) => u.state === 'notified')).toHaveLength(3);
      await fleet.tick();
      expect((await show(fleet, r.id)).current_phase).toBe(0); // batch 1 still working
      expect(await fleet.connect(fleet.devices.keys())).toHaveLength(3);
      await fleet.tick();
      expect((await show(fleet, r.id)).current_phase).toBe(1);
      expect(await fleet.connect(fleet.devices.keys())).toHaveLength(3);
      await fleet.tick();
      expect(await fleet.connect(fleet.devices.keys())).toHaveLength(1);
      await fleet.tick();
      expect((await show(fleet, r.id)).state).toBe('completed');
    });

    it('blue-green: every device stages, then all switch together when promoted', async () => {
      await onlineFleet(4);
      const r = await create(fleet, { name: 'bg', release: 'fw@2.0.0', filter: '', strategy: 'blue_green' });
      const staged = await fleet.connect(fleet.devices.keys());
      expect(staged.every((s) => s.action === 'download_only' && s.state === 'succeeded')).toBe(true);
      await fleet.tick();
      expect([...fleet.devices.values()].map((d) => d.firmware)).toEqual([
        '1.0.0',
        '1.0.0',
        '1.0.0',
        '1.0.0',
      ]);
      expect(await fleet.connect(fleet.devices.keys())).toHaveLength(0); // staged, waiting for the switch
      await command(fleet, r.id, 'promote');
      await fleet.tick();
      const switched = await fleet.connect(fleet.devices.keys());
      expect(switched.map((s) => s.action)).toEqual(['switch', 'switch', 'switch', 'switch']);
      expect([...fleet.devices.values()].map((d) => d.firmware)).toEqual([
        '2.0.0',
        '2.0.0',
        '2.0.0',
        '2.0.0',
      ]);
      await fleet.tick();
      expect((await show(fleet, r.id)).state).toBe('completed');
    });

    it('blue-green with switch_at switches by itself once that share has staged', async () => {
      await onlineFleet(4);
      const r = await create(fleet, {
        name: 'bg',
        release: 'fw@2.0.0',
        filter: '',
        strategy: 'blue_green',
        switch_at: 50,
      });
      await fleet.connect(['dev-0000', 'dev-0001']);
      await fleet.tick();
      expect((await show(fleet, r.id)).current_phase).toBe(1);
      expect((await fleet.connect(['dev-0000', 'dev-0001'])).map((s) => s.action)).toEqual([
        'switch',
        'switch',
      ]);
    });

    it('on_connect takes in devices registered later and devices whose firmware came to match (seed 001, scenario 4)', async () => {
      await onlineFleet(2);
      const r = await create(fleet, {
        name: 'continuous',
        release: 'fw@2.0.0',
        filter: 'firmware < 2.0.0',
        strategy: 'on_connect',
      });
      expect(r.totals.targets).toBe(2);
      await fleet.connect(fleet.devices.keys());
      await fleet.importFleet(syntheticFleet(1, { prefix: 'late' }));
      fleet.advance(2 * MINUTE);
      await fleet.tick();
      expect(await fleet.connect(['late-0000'])).toEqual([
        expect.objectContaining({ state: 'succeeded', version: '2.0.0' }),
      ]);
      const after = await show(fleet, r.id);
      expect(after.state).toBe('running'); // continuous: it never completes on its own
      expect(after.totals.targets).toBe(3);
    });
  });

  describe('operator control', () => {
    it('pause holds every device; resume lets them go on', async () => {
      await onlineFleet(3);
      const r = await create(fleet, { name: 'p', release: 'fw@2.0.0', filter: '', strategy: 'immediate' });
      await command(fleet, r.id, 'pause');
      const held = (await fleet.device('dev-0000').heartbeat())[0]!;
      expect(held.retry_after).toBeGreaterThan(0);
      expect(await fleet.connect(fleet.devices.keys())).toHaveLength(0);
      await command(fleet, r.id, 'resume');
      expect(await fleet.connect(fleet.devices.keys())).toHaveLength(3);
    });

    it('cancel mid-phase: devices not started never start, and the device at work is told', async () => {
      await onlineFleet(4);
      const r = await create(fleet, {
        name: 'c',
        release: 'fw@2.0.0',
        filter: '',
        strategy: 'immediate',
        max_concurrent: 1,
      });
      const [working] = await fleet.device('dev-0000').heartbeat();
      expect(working?.state).toBe('notified');
      const cancelled = await command(fleet, r.id, 'cancel');
      expect(cancelled.state).toBe('cancelled');
      expect(cancelled.totals.counts).toEqual({ cancelled: 4 });
      // The rollout was to 4 devices, and still says so: they show as cancelled, not as gone.
      expect(cancelled.totals.targets).toBe(4);
      expect(cancelled.phases[0]).toMatchObject({ devices: 4, counts: { cancelled: 4 } });
      expect(await fleet.connect(fleet.devices.keys())).toHaveLength(0);
      await expect(command(fleet, r.id, 'resume')).rejects.toThrow(/409/);
    });

    it('rollback returns every updated device to its previous version', async () => {
      await onlineFleet(3);
      const r = await create(fleet, { name: 'rb', release: 'fw@2.0.0', filter: '', strategy: 'immediate' });
      await fleet.connect(fleet.devices.keys());
      await fleet.tick();
      expect((await show(fleet, r.id)).state).toBe('completed');
      await command(fleet, r.id, 'rollback');
      const back = await fleet.connect(fleet.devices.keys());
      expect(back.map((b) => `${b.action} ${b.version} ${b.state}`)).toEqual(
        Array(3).fill('install 1.0.0 succeeded'),
      );
      const after = await show(fleet, r.id);
      expect(after.state).toBe('rolled_back');
      expect(after.rollback).toEqual({ succeeded: 3 });
    });

    it('a rollback that cannot return every device says how many and why; uploading the old firmware completes it', async () => {
      // Blue-green to 5 devices, 4 of them on a factory version that is no stored release.
      fleet = await VirtualFleet.create({ start: Date.parse('2026-01-05T12:00:00Z'), db });
      await fleet.importFleet(syntheticFleet(1));
      await fleet.importFleet(syntheticFleet(4, { prefix: 'fac', firmware: '0.9.0' }));
      await fleet.release('fw', '1.0.0', ['hw-a']);
      await fleet.release('fw', '2.0.0', ['hw-a']);
      for (const d of fleet.devices.values()) await d.heartbeat();
      const r = await create(fleet, { name: 'bg', release: 'fw@2.0.0', filter: '', strategy: 'blue_green' });
      await fleet.connect(fleet.devices.keys());
      await command(fleet, r.id, 'promote');
      await fleet.tick();
      expect(await fleet.connect(fleet.devices.keys())).toHaveLength(5);
      await fleet.tick();
      expect((await show(fleet, r.id)).state).toBe('completed');

      const rb = await command(fleet, r.id, 'rollback');
      expect(rb.state).toBe('rolled_back');
      expect(rb.reason).toBe(
        'rolled back by operator: 1 devices returning, 4 cannot (no release of the version they ran before is stored)',
      );
      expect(rb.rollback).toEqual({ pending: 1 });
      expect(rb.rollback_unavailable).toEqual({
        count: 4,
        devices: ids(4, 'fac').map((id) => ({
          device_id: id,
          version: '0.9.0',
          reason: 'no release fw@0.9.0 in the store',
        })),
      });
      // The operator registers the factory firmware as a release and rolls back again: the rest return too.
      await fleet.release('fw', '0.9.0', ['hw-a']);
      const again = await command(fleet, r.id, 'rollback');
      expect(again.rollback_unavailable).toBeNull();
      const back = await fleet.connect(fleet.devices.keys());
      expect(back.map((b) => `${b.version} ${b.state}`).sort()).toEqual([
        ...Array(4).fill('0.9.0 succeeded'),
        '1.0.0 succeeded',
      ]);
      expect((await show(fleet, r.id)).rollback).toEqual({ succeeded: 5 });
    });

    it('refuses a spec with a clear, field-named error and an unknown release', async () => {
      await onlineFleet(1);
      const bad = await fleet.parts.app.inject({
        method: 'POST',
        url: '/api/v1/rollouts',
        headers: { authorization: `Bearer ${fleet.adminToken}` },
        payload: {
          name: 'x',
          release: 'fw@2.0.0',
          filter: '',
          strategy: 'progressive',
          phases: [{ percentage: 50 }, { percentage: 40 }],
        },
      });
      expect(bad.statusCode).toBe(400);
      expect(bad.json().error.message).toBe(
        'phases[1].percentage: must be greater than the previous phase (50)',
      );
      const unknown = await fleet.parts.app.inject({
        method: 'POST',
        url: '/api/v1/rollouts',
        headers: { authorization: `Bearer ${fleet.adminToken}` },
        payload: { name: 'x', release: 'fw@9.9.9', filter: '', strategy: 'immediate' },
      });
      expect(unknown.statusCode).toBe(400);
      expect(unknown.json().error.message).toMatch(/^release: fw@9.9.9 is not in the artifact store/);
    });
  });

  describe('durability', () => {
    it('a restart between every step changes nothing: same outcome, no device offered twice, none forgotten', async () => {
      await onlineFleet(20);
      const failing = new Set(['dev-0003']);
      fleet.setOutcome((id) => (failing.has(id) ? { kind: 'fail', error: 'flaky' } : { kind: 'succeed' }));
      const r = await create(fleet, {
        name: 'restarts',
        release: 'fw@2.0.0',
        filter: '',
        strategy: 'progressive',
        phases: [
          { name: 'canary', percentage: 10, wait: '1h', success_rate: 50 },
          { name: 'rest', percentage: 100, success_rate: 50 },
        ],
        max_concurrent: 4,
        retry: { attempts: 2, backoff: '5m' },
        seed: 11,
      });
      for (let step = 0; step < 20; step++) {
        await fleet.restart();
        await fleet.connect(fleet.devices.keys());
        await fleet.restart();
        await fleet.tick();
        fleet.advance(20 * MINUTE);
      }
      const after = await show(fleet, r.id);
      expect(after.state).toBe('completed');
      expect(after.totals.counts).toEqual(failing.size ? { succeeded: 19, failed: 1 } : { succeeded: 20 });
      const granted = await grants(fleet, r.id);
      expect(granted.size).toBe(20);
      for (const [id, n] of granted) expect({ id, n }).toEqual({ id, n: failing.has(id) ? 2 : 1 });
    }, 120_000);
  });
});
