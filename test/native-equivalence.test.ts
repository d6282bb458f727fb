/**
 * SQLite's native paths (prepared statements) against the shared SQL on SQLite: the same random commands,
 * at the same instants, on two fresh stores (one with `native: true`, one with `native: false`) must give the
 * same answers, the same rows and the same events. Update and rollout ids are random by design, so they are
 * compared by the order they were written in.
 */
import fc from 'fast-check';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { DEFAULT_THRESHOLDS } from '../src/core/device.js';
import { parseRolloutSpec } from '../src/core/rollout/spec.js';
import { DEVICE_REPORTED_STATES } from '../src/core/update-state.js';
import { createRollout } from '../src/engine/rollout-service.js';
import type { SqlStore } from '../src/store/sql-store.js';
import { openSqliteStore } from '../src/store/sqlite/connect.js';
import type { TimeContext } from '../src/store/store.js';
import { testRelease } from './support/stores.js';

const START = Date.UTC(2026, 0, 5, 12);
const DEVICES = 6;
const dev = (i: number) => `d-${i}`;

type Command =
  | {
      kind: 'import';
      devices: Array<{ i: number; firmware: string | null; hw: 'hw-a' | 'hw-b'; tag?: string }>;
    }
  | { kind: 'credentials'; devices: number[] }
  | {
      kind: 'heartbeat';
      beats: Array<{ i: number; good: boolean; firmware?: string; battery?: number; cert?: 'own' | 'other' }>;
    }
  | { kind: 'certificates'; devices: number[] }
  | { kind: 'revoke'; i: number }
  | { kind: 'advance'; ms: number }
  | { kind: 'sweep'; bounded: boolean }
  | { kind: 'assign'; devices: number[]; version: '1.0.0' | '2.0.0' }
  | { kind: 'rollout'; version: '1.0.0' | '2.0.0'; maxConcurrent: number | null }
  | { kind: 'offer'; devices: number[] }
  | {
      kind: 'report';
      reports: Array<{ i: number; seq: number; state: (typeof DEVICE_REPORTED_STATES)[number] }>;
    };

const device = fc.integer({ min: 0, max: DEVICES - 1 });
const devices = fc.uniqueArray(device, { minLength: 1, maxLength: DEVICES });
const version = fc.constantFrom('1.0.0' as const, '2.0.0' as const);

const command: fc.Arbitrary<Command> = fc.oneof(
  fc.record({
    kind: fc.constant('import' as const),
    devices: fc.uniqueArray(
      fc.record(
        {
          i: device,
          firmware: fc.constantFrom(null, '1.0.0', '2.0.0'),
          hw: fc.constantFrom('hw-a' as const, 'hw-b' as const),
          tag: fc.constantFrom('eu', 'us'),
        },
        { requiredKeys: ['i', 'firmware', 'hw'] },
      ),
      { minLength: 1, maxLength: DEVICES, selector: (d) => d.i },
    ),
  }),
  fc.record({ kind: fc.constant('credentials' as const), devices }),
  fc.record({ kind: fc.constant('certificates' as const), devices }),
  fc.record({ kind: fc.constant('revoke' as const), i: device }),
  fc.record({
    kind: fc.constant('heartbeat' as const),
    beats: fc.array(
      fc.record(
        {
          i: device,
          good: fc.boolean(),
          firmware: fc.constantFrom('1.0.0', '2.0.0'),
          battery: fc.integer({ min: 0, max: 100 }),
          // Over a client certificate: the device's own (when it has one) or another device's.
          cert: fc.constantFrom('own' as const, 'own' as const, 'other' as const),
        },
        { requiredKeys: ['i', 'good'] },
      ),
      { minLength: 1, maxLength: 8 },
    ),
  }),
  fc.record({
    kind: fc.constant('advance' as const),
    ms: fc.constantFrom(1_000, 60_000, 10 * 60_000, 8 * 86_400_000),
  }),
  fc.record({ kind: fc.constant('sweep' as const), bounded: fc.boolean() }),
  fc.record({ kind: fc.constant('assign' as const), devices, version }),
  fc.record({
    kind: fc.constant('rollout' as const),
    version,
    maxConcurrent: fc.constantFrom(null, 1, 2),
  }),
  fc.record({ kind: fc.constant('offer' as const), devices }),
  fc.record({
    kind: fc.constant('report' as const),
    reports: fc.array(
      fc.record({
        i: device,
        seq: fc.integer({ min: 0, max: 6 }),
        state: fc.constantFrom(...DEVICE_REPORTED_STATES),
      }),
      { minLength: 1, maxLength: 4 },
    ),
  }),
);

/**
 * Random commands, half the time after a start where some devices are registered with a certificate, so that
 * heartbeats over certificates, revocations and their order meet often enough to be compared.
 */
const commands: fc.Arbitrary<Command[]> = fc
  .tuple(
    fc.option(
      fc.subarray(
        Array.from({ length: DEVICES }, (_, i) => i),
        { minLength: 1 },
      ),
    ),
    fc.boolean(),
    fc.array(command, { minLength: 1, maxLength: 25 }),
  )
  .map(([certified, revoke, rest]): Command[] =>
    certified === null
      ? rest
      : [
          { kind: 'import', devices: certified.map((i) => ({ i, firmware: null, hw: 'hw-a' as const })) },
          { kind: 'certificates', devices: certified },
          ...(revoke ? [{ kind: 'revoke' as const, i: certified[0]! }] : []),
          ...rest,
        ],
  );

/** A certificate (fingerprint `f<i>`) for each device that has none yet; the errors of the others, by code. */
async function recordCertificates(store: SqlStore, devices: number[], now: number): Promise<unknown[]> {
  const answers: unknown[] = [];
  for (const i of devices) {
    if ((await store.certificates.ofDevice(dev(i))).length > 0) continue;
    const certificate = {
      serial: `s${i}`,
      deviceId: dev(i),
      fingerprint: `f${i}`,
      issuer: 'fleetd',
      notBefore: now,
      notAfter: now + 86_400_000,
      issuedAt: now,
    };
    answers.push(await store.certificates.record(certificate, 'op').catch((e: { code?: string }) => e.code));
  }
  return answers;
}

/** One store and the clock it runs on. */
interface Side {
  store: SqlStore;
  rollouts: number;
}

const ctxAt = (now: number): TimeContext => ({ now, thresholds: DEFAULT_THRESHOLDS });

/** The device's newest update in this store (the one its reports are about), if it has one. */
async function updateOf(store: SqlStore, deviceId: string): Promise<string> {
  const row = await sql<{ id: string }>`select id from device_updates where device_id = ${deviceId}
    order by rowid desc limit 1`.execute(store.db);
  return row.rows[0]?.id ?? 'upd_none';
}

async function run(side: Side, c: Command, now: number): Promise<unknown> {
  const { store } = side;
  const ctx = ctxAt(now);
  switch (c.kind) {
    case 'import':
      return store.importDevices(
        c.devices.map((d) => ({
          id: dev(d.i),
          firmwareVersion: d.firmware,
          hardwareType: d.hw,
          ...(d.tag === undefined ? {} : { tags: { region: d.tag } }),
        })),
        ctx,
        'op',
      );
    case 'credentials':
      return store.setCredentials(
        c.devices.map((i) => ({ id: dev(i), credentialHash: `h${i}` })),
        ctx,
        'op',
      );
    case 'heartbeat':
      return store.recordHeartbeats(
        c.beats.map((b) => ({
          heartbeat: {
            deviceId: dev(b.i),
            ...(b.firmware === undefined ? {} : { firmwareVersion: b.firmware }),
            ...(b.battery === undefined ? {} : { battery: b.battery }),
          },
          ...(b.cert === undefined
            ? { credentialHash: b.good ? `h${b.i}` : 'wrong' }
            : { certificateFingerprint: `f${b.cert === 'own' ? b.i : (b.i + 1) % DEVICES}` }),
        })),
        ctx,
      );
    case 'certificates':
      return recordCertificates(store, c.devices, now);
    case 'revoke':
      return store.certificates.revokeDevice(dev(c.i), now, 'op');
    case 'advance':
      return null;
    case 'sweep':
      return store.sweepStatuses(ctx, c.bounded ? now - 3_600_000 : undefined);
    case 'assign':
      return store.updates.assign(c.devices.map(dev), `rel-${c.version}`, { action: 'install' }, ctx, 'op');
    case 'rollout': {
      const spec = parseRolloutSpec({
        name: `r${side.rollouts++}`,
        release: `fw@${c.version}`,
        filter: '',
        strategy: 'immediate',
        seed: 7,
        ...(c.maxConcurrent === null ? {} : { max_concurrent: c.maxConcurrent }),
      });
      return (await createRollout(store, spec, ctx, 'op')).plan;
    }
    case 'offer':
      return [...(await store.updates.offer(c.devices.map(dev), ctx))];
    case 'report': {
      const items = [];
      for (const r of c.reports) {
        const deviceId = dev(r.i);
        items.push({
          deviceId,
          updateId: await updateOf(store, deviceId),
          report: { seq: r.seq, state: r.state },
        });
      }
      const answers = await store.updates.reportBatch(items, ctx);
      return answers.map((a) => (a instanceof Error ? { error: a.message } : a));
    }
  }
}

/** Update and rollout ids, in the order their rows were written, as `U1`, `R1`…: the same in both stores. */
async function idNames(store: SqlStore): Promise<Map<string, string>> {
  const names = new Map<string, string>();
  const updates = await sql<{ id: string }>`select id from device_updates order by rowid`.execute(store.db);
  for (const [n, r] of updates.rows.entries()) names.set(r.id, `U${n}`);
  const rollouts = await sql<{ id: string }>`select id from rollouts order by rowid`.execute(store.db);
  for (const [n, r] of rollouts.rows.entries()) names.set(r.id, `R${n}`);
  return names;
}

async function snapshot(store: SqlStore): Promise<unknown> {
  const read = async (table: string, order: string) =>
    (
      await sql<
        Record<string, unknown>
      >`select * from ${sql.table(table)} order by ${sql.raw(order)}`.execute(store.db)
    ).rows;
  return {
    devices: await read('devices', 'id'),
    tags: await read('device_tags', 'device_id, key'),
    certificates: await read('device_certificates', 'serial'),
    updates: await read('device_updates', 'rowid'),
    rollouts: await read('rollouts', 'rowid'),
    // By the rollout's write order, not its random id, so both stores list the same rollout first.
    counts: await read(
      'rollout_counts',
      '(select r.rowid from rollouts r where r.id = rollout_id), phase, purpose, state',
    ),
    events: await read('events', 'id'),
  };
}

/** `value` as JSON with every update and rollout id replaced by its name. */
function named(value: unknown, names: Map<string, string>): unknown {
  const text = JSON.stringify(value, (_k, v: unknown) => (v instanceof Map ? [...v] : v));
  return JSON.parse(text.replace(/\b(upd|ro)_[A-Za-z0-9_-]+/g, (id) => names.get(id) ?? id));
}

describe('native SQLite paths against the shared SQL', () => {
  it('give the same answers, rows and events for random heartbeats, sweeps, imports, offers and reports', async () => {
    await fc.assert(
      fc.asyncProperty(commands, async (commands) => {
        const native: Side = { store: await openSqliteStore(':memory:', { native: true }), rollouts: 0 };
        const shared: Side = { store: await openSqliteStore(':memory:', { native: false }), rollouts: 0 };
        try {
          for (const side of [native, shared]) {
            await side.store.releases.create(testRelease('rel-1.0.0', '1.0.0', START), 'op');
            await side.store.releases.create(testRelease('rel-2.0.0', '2.0.0', START), 'op');
          }
          let now = START;
          for (const c of commands) {
            if (c.kind === 'advance') now += c.ms;
            const a = await run(native, c, now).catch((e: unknown) => ({ threw: String(e) }));
            const b = await run(shared, c, now).catch((e: unknown) => ({ threw: String(e) }));
            const [na, nb] = [await idNames(native.store), await idNames(shared.store)];
            expect(named(a, na), JSON.stringify(c)).toEqual(named(b, nb));
          }
          const [na, nb] = [await idNames(native.store), await idNames(shared.store)];
          expect(named(await snapshot(native.store), na)).toEqual(named(await snapshot(shared.store), nb));
        } finally {
          await native.store.close();
          await shared.store.close();
        }
      }),
      { numRuns: 40 },
    );
  }, 120_000);
});
