/**
 * PostgreSQL's native heartbeat path (one locking read and one write a batch) against the shared SQL on
 * PostgreSQL: the same random commands, at the same instants, on two stores (one with `native: true`, one with
 * `native: false`) must give the same answers, the same device rows and the same events. The batches mix
 * unknown devices, wrong credentials, decommissioned devices, a device twice, status and firmware changes, and
 * values the database refuses; rollouts created among them compare the native rows of a new rollout too. Events are compared in log order (their serial ids, which two schemas need not
 * share), with update ids named by their first appearance in the log.
 */
import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_THRESHOLDS } from '../src/core/device.js';
import { parseRolloutSpec } from '../src/core/rollout/spec.js';
import { createRollout } from '../src/engine/rollout-service.js';
import type { SqlStore } from '../src/store/sql-store.js';
import type { PresentedHeartbeat, TimeContext } from '../src/store/store.js';
import { postgresBackends, testRelease } from './support/stores.js';

const START = Date.UTC(2026, 0, 5, 12);
const DEVICES = 8;
/** Ids up to DEVICES + 1: the last two are never imported. */
const dev = (i: number) => `d-${i}`;
const ctxAt = (now: number): TimeContext => ({ now, thresholds: DEFAULT_THRESHOLDS });

interface Beat {
  i: number;
  good: boolean;
  /** Over a client certificate (fingerprint `f<cert>`): the device's own, or another device's. */
  cert?: 'own' | 'other';
  firmware?: string;
  battery?: number;
  signal?: number;
  location?: { lat: number; lon: number };
  timestamp?: string;
  metrics?: Record<string, number>;
}

type Command =
  | { kind: 'import'; devices: Array<{ i: number; firmware: string | null; seen: number | null }> }
  | { kind: 'credentials'; devices: number[] }
  | { kind: 'certificates'; devices: number[] }
  | { kind: 'revoke'; i: number }
  | { kind: 'decommission'; i: number }
  | { kind: 'assign'; devices: number[] }
  | { kind: 'offer'; devices: number[] }
  | { kind: 'rollout' }
  | { kind: 'heartbeat'; beats: Beat[] }
  | { kind: 'advance'; ms: number }
  | { kind: 'sweep' };

const device = fc.integer({ min: 0, max: DEVICES - 1 });
const devices = fc.uniqueArray(device, { minLength: 1, maxLength: DEVICES });

const beat: fc.Arbitrary<Beat> = fc.record(
  {
    i: fc.integer({ min: 0, max: DEVICES + 1 }),
    good: fc.boolean(),
    cert: fc.constantFrom('own' as const, 'other' as const),
    firmware: fc.constantFrom('1.0.0', '2.0.0', '2.1.0-rc.1'),
    // Halves: a column written with the wrong numeric type would round them.
    battery: fc.integer({ min: 0, max: 200 }).map((n) => n / 2),
    signal: fc.integer({ min: -120, max: 0 }),
    location: fc.record({
      lat: fc.integer({ min: -180, max: 180 }).map((n) => n / 2),
      lon: fc.integer({ min: -360, max: 360 }).map((n) => n / 2),
    }),
    // Now and then a NUL byte: a value PostgreSQL refuses, which must fail the batch alike on both paths.
    timestamp: fc.oneof(
      { weight: 40, arbitrary: fc.constantFrom('2026-01-05T12:00:00Z', '2026-01-05T12:00:01Z') },
      { weight: 1, arbitrary: fc.constant('2026-01-05\u0000') },
    ),
    metrics: fc.dictionary(fc.constantFrom('cpu', 'mem'), fc.integer({ min: 0, max: 100 })),
  },
  { requiredKeys: ['i', 'good'] },
);

const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('import' as const),
      devices: fc.uniqueArray(
        fc.record({
          i: device,
          firmware: fc.constantFrom(null, '1.0.0', '2.0.0'),
          seen: fc.constantFrom(null, 60_000, 20 * 60_000),
        }),
        { minLength: 1, maxLength: DEVICES, selector: (d) => d.i },
      ),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('credentials' as const), devices }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('certificates' as const), devices }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('revoke' as const), i: device }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('decommission' as const), i: device }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('assign' as const), devices }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('offer' as const), devices }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('rollout' as const) }) },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('heartbeat' as const),
      beats: fc.array(beat, { minLength: 1, maxLength: 12 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('advance' as const),
      ms: fc.constantFrom(1_000, 10 * 60_000 + 1, 31 * 86_400_000),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('sweep' as const) }) },
);

/**
 * Every device registered first, most with a credential, half with a certificate, and some with an update to offer, so that most heartbeats
 * get past authentication and some answer that an update is open.
 */
const setup: fc.Arbitrary<Command[]> = fc
  .array(
    fc.record({
      firmware: fc.constantFrom(null, '1.0.0', '2.0.0'),
      seen: fc.constantFrom(null, 60_000, 20 * 60_000),
      credential: fc.integer({ min: 0, max: 4 }).map((n) => n > 0),
      certificate: fc.boolean(),
      update: fc.boolean(),
    }),
    { minLength: DEVICES, maxLength: DEVICES },
  )
  .map((list) => [
    { kind: 'import', devices: list.map((d, i) => ({ i, firmware: d.firmware, seen: d.seen })) },
    { kind: 'credentials', devices: list.flatMap((d, i) => (d.credential ? [i] : [])) },
    { kind: 'certificates', devices: list.flatMap((d, i) => (d.certificate ? [i] : [])) },
    { kind: 'assign', devices: list.flatMap((d, i) => (d.update ? [i] : [])) },
  ]);

function presented(b: Beat): PresentedHeartbeat {
  return {
    heartbeat: {
      deviceId: dev(b.i),
      ...(b.firmware === undefined ? {} : { firmwareVersion: b.firmware }),
      ...(b.battery === undefined ? {} : { battery: b.battery }),
      ...(b.signal === undefined ? {} : { signalStrength: b.signal }),
      ...(b.location === undefined ? {} : { location: b.location }),
      ...(b.timestamp === undefined ? {} : { timestamp: b.timestamp }),
      ...(b.metrics === undefined ? {} : { metrics: b.metrics }),
    },
    ...(b.cert === undefined
      ? { credentialHash: b.good ? `h${b.i}` : 'wrong' }
      : { certificateFingerprint: `f${b.cert === 'own' ? b.i : b.i + 1}` }),
  } as PresentedHeartbeat;
}

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

async function run(store: SqlStore, c: Command, now: number): Promise<unknown> {
  const ctx = ctxAt(now);
  switch (c.kind) {
    case 'import':
      return store.importDevices(
        c.devices.map((d) => ({
          id: dev(d.i),
          firmwareVersion: d.firmware,
          hardwareType: 'hw-a',
          lastSeen: d.seen === null ? null : now - d.seen,
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
    case 'decommission':
      return (await store.decommissionDevice(dev(c.i), ctx, 'op')).status;
    case 'certificates':
      return recordCertificates(store, c.devices, now);
    case 'revoke':
      return store.certificates.revokeDevice(dev(c.i), now, 'op');
    case 'assign':
      return (await store.updates.assign(c.devices.map(dev), 'rel-2', { action: 'install' }, ctx, 'op'))
        .assigned.length;
    case 'offer':
      return [...(await store.updates.offer(c.devices.map(dev), ctx))].map(([id, offers]) => [
        id,
        offers.length,
      ]);
    case 'rollout': {
      // PostgreSQL's native rows of a new rollout (postgres/rollouts.ts) against the shared ones, superseding too.
      const spec = parseRolloutSpec({
        name: 'r',
        release: 'fw@2.0.0',
        filter: '',
        strategy: 'immediate',
        seed: 7,
      });
      return (await createRollout(store, spec, ctx, 'op')).plan.counts;
    }
    case 'heartbeat':
      return store.recordHeartbeats(c.beats.map(presented), ctx);
    case 'advance':
      return null;
    case 'sweep':
      return store.sweepStatuses(ctx);
  }
}

/** The errors compared by code: the database's wording may name a different statement on each path. */
const settle = (p: Promise<unknown>) =>
  p.catch((e: unknown) => ({ threw: (e as { code?: string }).code ?? String(e) }));

async function snapshot(store: SqlStore): Promise<unknown> {
  const devicesRows = (await sql`select * from devices order by id`.execute(store.db)).rows;
  const events = (
    await sql<Record<string, unknown>>`select at, type, device_id, rollout_id, actor, reason, data
      from events order by id`.execute(store.db)
  ).rows;
  // Update and rollout ids are random: their rows are ordered by what is not, and each id is named by its first
  // appearance in the log, the same on both sides.
  const updates = (
    await sql<Record<string, unknown>>`select * from device_updates
      order by created_at, device_id, state, updated_at`.execute(store.db)
  ).rows;
  const names = new Map<string, string>();
  const name = (value: unknown) =>
    JSON.parse(
      JSON.stringify(value).replace(/\b(upd|ro)_[A-Za-z0-9_-]+/g, (id) => {
        if (!names.has(id)) names.set(id, `#${names.size}`);
        return names.get(id)!;
      }),
    ) as unknown;
  const certificates = (await sql`select * from device_certificates order by serial`.execute(store.db)).rows;
  return { devices: devicesRows, certificates, events: name(events), updates: name(updates) };
}

async function reset(store: SqlStore): Promise<void> {
  await sql`truncate devices, device_tags, device_certificates, device_updates, rollouts, events
    restart identity cascade`.execute(store.db);
}

const backend = postgresBackends.native;
const run_ = backend.skipped === undefined ? describe : describe.skip;

run_('PostgreSQL: native heartbeats against the shared SQL', () => {
  const opened: Array<{ store: SqlStore; dispose(): Promise<void> }> = [];
  let native: SqlStore;
  let shared: SqlStore;

  beforeAll(async () => {
    const [a, b] = await Promise.all([postgresBackends.native.create(), postgresBackends.shared.create()]);
    opened.push(a, b);
    [native, shared] = [a.store, b.store];
    for (const store of [native, shared]) {
      await store.releases.create(testRelease('rel-2', '2.0.0', START, ['hw-a']), 'op');
    }
  });
  afterAll(async () => {
    await Promise.all(opened.map((o) => o.dispose()));
  });

  it('the stores are what they say: one with the native heartbeat path, one without', () => {
    expect(native.adapter.native?.recordHeartbeats).toBeDefined();
    expect(shared.adapter.native).toBeUndefined();
  });

  it('give the same answers, device rows and events for random heartbeat batches', async () => {
    await fc.assert(
      fc.asyncProperty(
        setup,
        fc.array(command, { minLength: 1, maxLength: 30, size: 'max' }),
        async (first, rest) => {
          await Promise.all([reset(native), reset(shared)]);
          let now = START;
          for (const c of [...first, ...rest]) {
            if (c.kind === 'advance') now += c.ms;
            const a = await settle(run(native, c, now));
            const b = await settle(run(shared, c, now));
            expect(a, JSON.stringify(c)).toEqual(b);
          }
          expect(await snapshot(native)).toEqual(await snapshot(shared));
        },
      ),
      { numRuns: 40, seed: 1414 },
    );
  }, 240_000);

  it('two replicas writing overlapping batches in opposite orders both go through, each change once', async () => {
    const pair = await postgresBackends.native.create();
    opened.push(pair);
    const a = pair.store;
    const b = await pair.another();
    const ids = Array.from({ length: 60 }, (_, i) => i);
    await a.importDevices(
      ids.map((i) => ({ id: dev(i) })),
      ctxAt(START),
      'op',
    );
    await a.setCredentials(
      ids.map((i) => ({ id: dev(i), credentialHash: `h${i}` })),
      ctxAt(START),
      'op',
    );
    const batch = (order: number[]) => order.map((i) => presented({ i, good: true }));
    for (let round = 1; round <= 10; round++) {
      // Each round after a silence: both batches find every device offline, one records it coming back.
      const ctx = ctxAt(START + round * 2 * DEFAULT_THRESHOLDS.offlineAfterMs);
      await Promise.all([
        a.recordHeartbeats(batch(ids), ctx),
        b.recordHeartbeats(batch([...ids].reverse()), ctx),
      ]);
    }
    const events = await a.listEvents({ typePrefix: 'device.status', limit: 10_000 });
    const online = events.filter((e) => e.data.to === 'online');
    expect(online).toHaveLength(ids.length * 10);
  });
});
