/**
 * The SQL compiler against the in-memory evaluator, on a real SQLite file: for every filter, the devices
 * the database returns must be exactly the devices `matchesFilter` accepts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import fc from 'fast-check';
import { Kysely, SqliteDialect } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_THRESHOLDS, type Device, type StatusThresholds } from '../../core/device.js';
import { type FilterNode, matchesFilter, parseFilter } from '../../core/filter/index.js';
import { mulberry32 } from '../../core/random.js';
import { versionKey } from '../../core/semver.js';
import { packageVersionKey } from '../../core/telemetry.js';
import type { Database } from '../schema.js';
import { compileFilter, globToLike } from './filter-sql.js';

const NOW = Date.UTC(2024, 9, 20, 12);
const MINUTE = 60_000;
const DAY = 86_400_000;
const CONTEXTS: Array<{ now: number; thresholds: StatusThresholds }> = [
  { now: NOW, thresholds: DEFAULT_THRESHOLDS },
  { now: NOW, thresholds: { offlineAfterMs: 5 * MINUTE, abandonedAfterMs: DAY } },
  // Odd but legal: abandoned before offline; deviceStatus then never says offline.
  { now: NOW, thresholds: { offlineAfterMs: 2 * DAY, abandonedAfterMs: DAY } },
];

const INJECTION = "x' or 1=1 --";
const NAMES = [
  'Truck 17',
  'truck 17',
  '100%',
  '100 percent',
  'a_b',
  'axb',
  'back\\slash',
  'Zürich',
  'zürich',
  'a😀c',
  '',
  'New York, NY',
  INJECTION,
  'it"s',
];
const IDS = ['a_b', 'axb', 'truck', 'bus', 'x.y:z', 'A-1'];
const FIRMWARE = [
  '2.1.9',
  '2.2.0-rc.1',
  '2.2.0-rc.2',
  '2.2.0',
  '2.2',
  'v2.10.0',
  '2.2.0+b7',
  '3.0.0-rc.1',
  '3.0.0',
  '1.0.0-alpha-1',
  '1.0.0-alpha.1',
  '0.9.0',
  'banana',
  null,
];
const HARDWARE = ['pos-x200', 'pos-x300', 'kiosk-k1', 'POS-X200', null];
const TIMEZONES = ['America/New_York', 'Europe/Zurich', null];
const LOCATIONS = ['New York, NY', 'Boston, MA', '', null];
const CUSTOMERS = ['acme', 'Acme', INJECTION, null];
const ADMISSIONS = ['accepted', 'pending', 'rejected'] as const;
const TAG_KEYS = ['region', 'channel', 'we:ird.key-1', 'Region'];
const TAG_VALUES = ['northeast', 'west', 'retail', 'franchise', 'North East', '%', ''];

const METRICS = ['disk_free_pct', 'temp_c', 'Cpu.load'];
const METRIC_VALUES = [0, 5, 9.5, 10, 10.000001, 42, -3, 100];
const OSES = ['Debian 12', 'Debian GNU/Linux 12 (bookworm)', 'Ubuntu 22.04.4 LTS', '', INJECTION, null];
const KERNELS = ['6.1.0-18-amd64', '5.15.0-91-generic', null];
const PACKAGES = ['openssl', 'libc6', 'g++-12'];
const PACKAGE_VERSIONS = [
  '3.0.11-1~deb12u2',
  '3.0.9-1',
  '1:3.0.13-0ubuntu3',
  '3.0.11',
  '2.36-9+deb12u4',
  'banana',
  '12.2.0',
];
// Around Los Angeles (34.05, -118.24): some within a few km of each other, a few across the antimeridian.
const LATS = [34.05, 34.5, 33.6, 35.0, 36.1, -33.9, 0, 89.9];
const LONS = [-118.24, -118.9, -117.5, 179.9, -179.9, 151.2, 0];

/** Deterministic pseudo-random numbers, so a failure reproduces. */
const random = mulberry32;

function fleet(count: number): Device[] {
  const rnd = random(7);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  // Silences at and one millisecond around every threshold of every context, and around 30d / 10m.
  const silences = [0, -MINUTE, 10 * MINUTE, 5 * MINUTE, DAY, 2 * DAY, 30 * DAY, 7 * DAY].flatMap((s) => [
    s - 1,
    s,
    s + 1,
  ]);
  return Array.from({ length: count }, (_, i) => {
    const r = rnd();
    const lastSeen = r < 0.1 ? null : r < 0.7 ? NOW - pick(silences) : NOW - Math.floor(rnd() * 60 * DAY);
    const tags: Record<string, string> = {};
    for (const key of TAG_KEYS) if (rnd() < 0.5) tags[key] = pick(TAG_VALUES);
    return {
      id: `${pick(IDS)}-${String(i).padStart(4, '0')}`,
      name: pick(NAMES),
      status: 'unknown',
      firmwareVersion: pick(FIRMWARE),
      hardwareType: pick(HARDWARE),
      location: pick(LOCATIONS),
      timezone: pick(TIMEZONES),
      customer: pick(CUSTOMERS),
      tags,
      lastSeen,
      createdAt:
        rnd() < 0.2
          ? Date.UTC(2024, 9, 20) + pick([-1, 0, 1, DAY - 1, DAY])
          : NOW - Math.floor(rnd() * 400 * DAY),
      decommissionedAt: rnd() < 0.1 ? NOW - DAY : null,
      hasCredential: false,
      admission: pick(ADMISSIONS),
      telemetry: {
        geo:
          rnd() < 0.2
            ? null
            : { lat: pick(LATS) + (rnd() - 0.5) * 0.8, lon: pick(LONS) + (rnd() - 0.5) * 0.8 },
        battery: null,
        signalStrength: null,
        deviceTime: null,
        metrics: {},
      },
      ...(rnd() < 0.15 ? {} : { reported: reportedOf(rnd, pick) }),
    };
  });
}

function reportedOf(rnd: () => number, pick: <T>(xs: readonly T[]) => T): NonNullable<Device['reported']> {
  const latest: Record<string, number> = {};
  for (const name of METRICS) if (rnd() < 0.7) latest[name] = pick(METRIC_VALUES);
  const packages: Record<string, string> = {};
  for (const name of PACKAGES) if (rnd() < 0.7) packages[name] = pick(PACKAGE_VERSIONS);
  return { latest, os: pick(OSES), kernel: pick(KERNELS), packages };
}

/** Config drift by position (no draw from the random source, so the fleet above stays as it was). */
const CONFIG_STATES = ['none', 'drift', 'applied', 'never-reported'] as const;
const configStateOf = (i: number) => CONFIG_STATES[i % CONFIG_STATES.length]!;

/** Every third device in a connectivity class (migration 0040) by position: its own thresholds, not the context's. */
const CLASSES = [
  {
    className: 'hourly',
    heartbeatIntervalMs: 60 * MINUTE,
    offlineAfterMs: 3 * 60 * MINUTE,
    abandonedAfterMs: 10 * DAY,
  },
  {
    className: 'fast',
    heartbeatIntervalMs: MINUTE / 2,
    offlineAfterMs: 2 * MINUTE,
    abandonedAfterMs: DAY / 2,
  },
] as const;
const classOf = (i: number) => (i % 3 === 0 ? CLASSES[(i / 3) % 2] : undefined);

const DEVICES = fleet(400).map((d, i) => ({
  ...d,
  configDrift: ['drift', 'never-reported'].includes(configStateOf(i)),
  ...(classOf(i) ? { connectivity: { ...classOf(i)! } } : {}),
}));
let dir: string;
let db: Kysely<Database>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fleetd-filter-sql-'));
  const database = new BetterSqlite3(join(dir, 'test.db'));
  database.pragma('case_sensitive_like = ON'); // as the SQLite adapter does
  db = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
  await db.schema
    .createTable('devices')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('firmware_version', 'text')
    .addColumn('firmware_key', 'text')
    .addColumn('hardware_type', 'text')
    .addColumn('location', 'text')
    .addColumn('timezone', 'text')
    .addColumn('customer', 'text')
    .addColumn('tags', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('last_seen', 'integer')
    .addColumn('recorded_status', 'text', (c) => c.notNull())
    .addColumn('created_at', 'integer', (c) => c.notNull())
    .addColumn('updated_at', 'integer', (c) => c.notNull())
    .addColumn('decommissioned_at', 'integer')
    .addColumn('credential_hash', 'text')
    .addColumn('geo_lat', 'real')
    .addColumn('geo_lon', 'real')
    .addColumn('battery', 'real')
    .addColumn('signal_strength', 'real')
    .addColumn('device_time', 'text')
    .addColumn('metrics', 'text')
    .addColumn('admission', 'text', (c) => c.notNull())
    .addColumn('admission_key', 'text')
    .addColumn('preauthorized', 'integer', (c) => c.notNull())
    .addColumn('connectivity_class', 'text')
    .addColumn('heartbeat_interval_ms', 'integer')
    .addColumn('offline_after_ms', 'integer')
    .addColumn('abandoned_after_ms', 'integer')
    .execute();
  await db.schema
    .createTable('device_tags')
    .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id').onDelete('cascade'))
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('value', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('device_tags_pk', ['device_id', 'key'])
    .execute();
  await db
    .insertInto('devices')
    .values(
      DEVICES.map((d) => ({
        id: d.id,
        name: d.name,
        firmware_version: d.firmwareVersion,
        firmware_key: d.firmwareVersion === null ? null : versionKey(d.firmwareVersion),
        hardware_type: d.hardwareType,
        location: d.location,
        timezone: d.timezone,
        customer: d.customer,
        tags: JSON.stringify(d.tags),
        last_seen: d.lastSeen,
        recorded_status: 'unknown',
        created_at: d.createdAt,
        updated_at: d.createdAt,
        decommissioned_at: d.decommissionedAt,
        credential_hash: null,
        geo_lat: d.telemetry.geo?.lat ?? null,
        geo_lon: d.telemetry.geo?.lon ?? null,
        battery: null,
        signal_strength: null,
        device_time: null,
        metrics: null,
        admission: d.admission,
        admission_key: null,
        preauthorized: 0,
        connectivity_class: d.connectivity?.className ?? null,
        heartbeat_interval_ms: d.connectivity?.heartbeatIntervalMs ?? null,
        offline_after_ms: d.connectivity?.offlineAfterMs ?? null,
        abandoned_after_ms: d.connectivity?.abandonedAfterMs ?? null,
      })),
    )
    .execute();
  const tags = DEVICES.flatMap((d) =>
    Object.entries(d.tags).map(([key, value]) => ({ device_id: d.id, key, value })),
  );
  await db.insertInto('device_tags').values(tags).execute();
  await createReportedTables();
  await createConfigTable();
});

/** The table of migration 0034 `config.drift` reads: no row, a drifting one, an applied one, one never reported. */
async function createConfigTable(): Promise<void> {
  await db.schema
    .createTable('device_config')
    .addColumn('device_id', 'text', (c) => c.primaryKey())
    .addColumn('desired_hash', 'text')
    .addColumn('applied_hash', 'text')
    .execute();
  const rows = DEVICES.flatMap((d, i) => {
    const state = configStateOf(i);
    if (state === 'none') return [];
    const applied = state === 'drift' ? 'old' : state === 'applied' ? 'new' : null;
    return [{ device_id: d.id, desired_hash: 'new', applied_hash: applied }];
  });
  for (let i = 0; i < rows.length; i += 200) {
    await db
      .insertInto('device_config')
      .values(rows.slice(i, i + 200))
      .execute();
  }
}

/** The tables of migration 0026 the reported terms read, filled from each device's `reported`. */
async function createReportedTables(): Promise<void> {
  await db.schema
    .createTable('telemetry_latest')
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('value', 'real', (c) => c.notNull())
    .addColumn('at', 'integer', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('device_inventory')
    .addColumn('device_id', 'text', (c) => c.primaryKey())
    .addColumn('os', 'text')
    .addColumn('kernel', 'text')
    .addColumn('interfaces', 'text', (c) => c.notNull())
    .addColumn('reported_at', 'integer', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('device_packages')
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('version', 'text', (c) => c.notNull())
    .addColumn('version_key', 'text')
    .execute();
  for (const d of DEVICES) {
    const r = d.reported;
    if (!r) continue;
    const latest = Object.entries(r.latest).map(([name, value]) => ({
      device_id: d.id,
      name,
      value,
      at: NOW,
    }));
    if (latest.length > 0) await db.insertInto('telemetry_latest').values(latest).execute();
    await db
      .insertInto('device_inventory')
      .values({ device_id: d.id, os: r.os, kernel: r.kernel, interfaces: '[]', reported_at: NOW })
      .execute();
    const packages = Object.entries(r.packages).map(([name, version]) => ({
      device_id: d.id,
      name,
      version,
      version_key: packageVersionKey(version),
    }));
    if (packages.length > 0) await db.insertInto('device_packages').values(packages).execute();
  }
}

afterAll(async () => {
  await db?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function sqlIds(node: FilterNode, ctx: (typeof CONTEXTS)[number]): Promise<string[]> {
  const rows = await db
    .selectFrom('devices')
    .select('id')
    .where((eb) => compileFilter(eb, node, ctx))
    .execute();
  return rows.map((r) => r.id).sort();
}

const memoryIds = (node: FilterNode, ctx: (typeof CONTEXTS)[number]) =>
  DEVICES.filter((d) => matchesFilter(node, d, ctx))
    .map((d) => d.id)
    .sort();

/** Asserts SQL and memory agree in every context; returns how many devices matched with the defaults. */
async function agree(filter: string): Promise<number> {
  const node = parseFilter(filter);
  if (!node) throw new Error('empty filter');
  const matched: number[] = [];
  for (const ctx of CONTEXTS) {
    const expected = memoryIds(node, ctx);
    expect(await sqlIds(node, ctx), `${filter} (thresholds ${JSON.stringify(ctx.thresholds)})`).toEqual(
      expected,
    );
    matched.push(expected.length);
  }
  return matched[0]!;
}

const quote = (v: string) => `"${v.replace(/[\\"]/g, '\\$&')}"`;

const FILTERS = [
  'status = online',
  'status = offline',
  'status = abandoned',
  'status = unknown',
  'status = decommissioned',
  'status != online',
  'status in (online, offline)',
  'status not in (online, unknown)',
  'status not in (unknown, online, offline, abandoned, decommissioned)',
  'id = truck-*',
  'id = "a_b*"',
  'id = a?b-*',
  'id in (bus-0001, x.y:z-*)',
  'id != *-00??',
  'name = "Truck*"',
  'name = "truck*"',
  'name = "100%"',
  'name = "100%*"',
  'name = "a_b"',
  'name = "a?b"',
  'name = "back\\\\*"',
  'name = "Z?rich"',
  'name = "a?c"',
  'name = ""',
  'name = "*"',
  'name != "*7"',
  'name = "it\\"s"',
  'hardware = pos-x200',
  'hardware != pos-x200',
  'hardware in (pos-x300, kiosk-k1)',
  'hardware not in (pos-x300, kiosk-k1)',
  'timezone = America/New_York',
  'location = "New York, NY"',
  'location != ""',
  'customer = acme',
  'customer != Acme',
  'admission = pending',
  'admission in (pending, rejected)',
  'admission != accepted',
  'tag.region = northeast',
  'tag.region != northeast',
  'tag.Region in (west, "North East")',
  'tag.region not in (west, northeast)',
  'tag.we:ird.key-1 = "%"',
  'tag.channel = ""',
  'firmware < 2.2.0',
  'firmware <= 2.2.0',
  'firmware > 2.2.0',
  'firmware >= 2.10.0',
  'firmware = 2.2.0',
  'firmware != 2.2.0',
  'firmware = ^2.1.0',
  'firmware = ~2.2.0',
  'firmware = 2.x',
  'firmware != 2.x',
  'firmware = *',
  'firmware != *',
  'firmware in (1.x, 3.0.0, ^2.2.0-rc.2)',
  'firmware < 3.0.0 and firmware > 2.2.0-rc.1',
  'firmware > 1.0.0-alpha-1',
  'last_seen > 30d ago',
  'last_seen >= 30d ago',
  'last_seen < 10m ago',
  'last_seen <= 10m ago',
  'last_seen > 2024-10-19',
  'last_seen < 2024-10-20T11:55:00Z',
  'last_seen = 2024-10-20',
  'last_seen != 2024-10-20',
  'last_seen = never',
  'last_seen != never',
  'not last_seen > 1d ago',
  'created = 2024-10-20',
  'created != 2024-10-20',
  'created > 90d ago',
  'not created <= 2024-01-01',
  'status=online and tag.region in (northeast, west) and firmware < 2.2.0 and last_seen > 30d ago',
  'not (status = online or tag.region = west) and firmware != 2.x',
  'status = online or status = offline and hardware = pos-x200',
  'not not (customer = acme or not tag.channel = retail)',
  'telemetry.disk_free_pct < 10',
  'telemetry.disk_free_pct <= 10',
  'telemetry.disk_free_pct = 10',
  'telemetry.disk_free_pct != 10',
  'telemetry.temp_c > -3',
  'telemetry.Cpu.load >= 42',
  'not telemetry.temp_c < 50',
  'inventory.os = "Debian 12"',
  'inventory.os != "Debian 12"',
  'inventory.os in ("Debian 12", "Ubuntu 22.04.4 LTS")',
  'inventory.os = ""',
  'inventory.kernel not in (6.1.0-18-amd64)',
  'inventory.package.openssl < 3.0.11',
  'inventory.package.openssl <= 3.0.11',
  'inventory.package.openssl >= 3.0.11',
  'inventory.package.openssl = 3.0.x',
  'inventory.package.openssl = *',
  'inventory.package.openssl != *',
  'inventory.package.g++-12 > 12.0.0',
  'inventory.package.libc6 != 2.36',
  'location near (34.05, -118.24, 50km)',
  'location near (34.05, -118.24, 500m)',
  'not location near (34.05, -118.24, 100)',
  'location near (-33.9, 151.2, 30km) or location near (0, 0, 40km)',
  'location within (33, -119, 35, -117)',
  'location within (-90, 179, 90, -179)',
  'not location within (33, -119, 35, -117)',
  'location within (33, -119, 35, -117) and telemetry.disk_free_pct < 10 and inventory.package.openssl < 3.0.11',
  'config.drift = true',
  'config.drift = false',
  'config.drift != true',
  'not config.drift = false and tag.region = northeast',
];

describe('compileFilter on SQLite', () => {
  it.each(FILTERS)('%s', async (filter) => {
    await agree(filter);
  });

  it('selects a meaningful share of the fleet (the data exercises every branch)', async () => {
    for (const filter of [
      'status = online',
      'status = offline',
      'status = abandoned',
      'firmware < 2.2.0',
      'tag.region = northeast',
      'telemetry.disk_free_pct < 10',
      'inventory.os = "Debian 12"',
      'inventory.package.openssl < 3.0.11',
      'location near (34.05, -118.24, 50km)',
      'location within (33, -119, 35, -117)',
      'config.drift = true',
    ]) {
      const n = await agree(filter);
      expect(n, filter).toBeGreaterThan(5);
      expect(n, filter).toBeLessThan(DEVICES.length - 5);
    }
  });

  it('binds injection attempts as values: they match nothing, not everything', async () => {
    expect(await agree(`tag.region = ${quote(INJECTION)}`)).toBe(0);
    expect(await agree(`hardware = ${quote(INJECTION)}`)).toBe(0);
    expect(await agree(`id = ${quote(`${INJECTION}*`)}`)).toBe(0);
    expect(await agree(`name = ${quote(INJECTION)}`)).toBe(
      DEVICES.filter((d) => d.name === INJECTION).length,
    );
    const node: FilterNode = { kind: 'tag', key: INJECTION, values: [INJECTION] };
    for (const ctx of CONTEXTS) expect(await sqlIds(node, ctx)).toEqual([]);
    const compiled = db
      .selectFrom('devices')
      .select('id')
      .where((eb) =>
        compileFilter(
          eb,
          { kind: 'or', children: [node, parseFilter(`name = "${INJECTION}*"`)!] },
          CONTEXTS[0]!,
        ),
      )
      .compile();
    expect(compiled.sql).not.toContain('1=1');
    expect(compiled.parameters).toContain(INJECTION);
  });

  it('escapes LIKE metacharacters in globs', () => {
    expect(globToLike('100%_\\*?')).toBe('100\\%\\_\\\\%_');
  });

  it('agrees with matchesFilter on generated filters', async () => {
    const value = (xs: readonly (string | null)[]) =>
      fc.constantFrom(...xs.filter((x) => x !== null)).map(quote);
    const op = fc.constantFrom('=', '!=');
    const list = (v: fc.Arbitrary<string>) =>
      fc.array(v, { minLength: 1, maxLength: 3 }).map((vs) => `(${vs.join(', ')})`);
    const inOrNot = fc.constantFrom('in', 'not in');
    const glob = fc
      .constantFrom('*', '?', 'a', '_', '%', '1', 'r', 'T', '\\')
      .chain((c) =>
        fc
          .array(fc.constantFrom(c, '*', '?', 'a', 'b', '-', '0', 'u', 'ü', '7'), { maxLength: 5 })
          .map((cs) => quote(cs.join(''))),
      );
    const order = fc.constantFrom('<', '<=', '>', '>=');
    const version = fc.constantFrom(
      '2.2.0',
      '2.2.0-rc.1',
      '2.10.0',
      '3.0.0-rc.1',
      '2.2',
      '1.0.0-alpha-1',
      '0.0.1',
    );
    const range = fc.constantFrom('^2.1.0', '~2.2.0', '2.x', '2.2.x', '*', '^0.9.0', '1.x');
    const time = fc.oneof(
      fc.constantFrom('30d', '10m', '5m', '1d', '2d', '7d', '1w', '60s').map((d) => `${d} ago`),
      fc.constantFrom('2024-10-20', '2024-10-19T12:00:00Z', '2024-10-20T11:55:00+00:00'),
    );
    const leaf = fc.oneof(
      fc
        .tuple(op, fc.constantFrom('unknown', 'online', 'offline', 'abandoned', 'decommissioned'))
        .map(([o, v]) => `status ${o} ${v}`),
      fc
        .tuple(inOrNot, list(fc.constantFrom('unknown', 'online', 'offline', 'abandoned')))
        .map(([o, l]) => `status ${o} ${l}`),
      fc.tuple(fc.constantFrom('id', 'name'), op, glob).map(([f, o, v]) => `${f} ${o} ${v}`),
      fc
        .tuple(fc.constantFrom('name'), inOrNot, list(fc.oneof(glob, value(NAMES))))
        .map(([f, o, l]) => `${f} ${o} ${l}`),
      fc.tuple(op, value(HARDWARE)).map(([o, v]) => `hardware ${o} ${v}`),
      fc.tuple(inOrNot, list(value(CUSTOMERS))).map(([o, l]) => `customer ${o} ${l}`),
      fc.tuple(op, fc.constantFrom(...ADMISSIONS)).map(([o, v]) => `admission ${o} ${v}`),
      fc.tuple(op, value(LOCATIONS)).map(([o, v]) => `location ${o} ${v}`),
      fc.tuple(fc.constantFrom(...TAG_KEYS), op, value(TAG_VALUES)).map(([k, o, v]) => `tag.${k} ${o} ${v}`),
      fc
        .tuple(fc.constantFrom(...TAG_KEYS), inOrNot, list(value(TAG_VALUES)))
        .map(([k, o, l]) => `tag.${k} ${o} ${l}`),
      fc.tuple(order, version).map(([o, v]) => `firmware ${o} ${v}`),
      fc.tuple(op, fc.oneof(version, range)).map(([o, v]) => `firmware ${o} ${v}`),
      fc.tuple(inOrNot, list(fc.oneof(version, range))).map(([o, l]) => `firmware ${o} ${l}`),
      fc.tuple(fc.constantFrom('last_seen', 'created'), order, time).map(([f, o, t]) => `${f} ${o} ${t}`),
      fc.tuple(fc.constantFrom('last_seen', 'created'), op).map(([f, o]) => `${f} ${o} 2024-10-20`),
      op.map((o) => `last_seen ${o} never`),
      fc
        .tuple(
          fc.constantFrom(...METRICS),
          fc.constantFrom('=', '!=', '<', '<=', '>', '>='),
          fc.constantFrom(...METRIC_VALUES),
        )
        .map(([m, o, v]) => `telemetry.${m} ${o} ${v}`),
      fc.tuple(op, value(OSES)).map(([o, v]) => `inventory.os ${o} ${v}`),
      fc.tuple(inOrNot, list(value(KERNELS))).map(([o, l]) => `inventory.kernel ${o} ${l}`),
      fc
        .tuple(
          fc.constantFrom(...PACKAGES),
          fc.oneof(order, op),
          fc.constantFrom('3.0.11', '3.0.9', '2.36', '12.2.0', '3.0.13'),
        )
        .map(([p, o, v]) => `inventory.package.${p} ${o} ${v}`),
      fc
        .tuple(fc.constantFrom(...PACKAGES), op, range)
        .map(([p, o, v]) => `inventory.package.${p} ${o} ${v}`),
      fc
        .tuple(
          fc.constantFrom(...LATS),
          fc.constantFrom(...LONS),
          fc.constantFrom('1km', '30km', '50km', '200', '900m'),
        )
        .map(([a, b, r]) => `location near (${a}, ${b}, ${r})`),
      fc
        .tuple(fc.constantFrom(...LATS), fc.constantFrom(...LONS), fc.constantFrom(...LONS))
        .map(([a, w, e]) => `location within (${Math.min(a, 34)}, ${w}, ${Math.max(a, 34)}, ${e})`),
      fc.tuple(op, fc.constantFrom('true', 'false')).map(([o, v]) => `config.drift ${o} ${v}`),
    );
    const { filter } = fc.letrec<{ filter: string }>((tie) => ({
      filter: fc.oneof(
        { maxDepth: 4, depthIdentifier: 'filter' },
        leaf,
        fc
          .tuple(tie('filter'), fc.constantFrom('and', 'or', 'AND', 'Or'), tie('filter'))
          .map(([a, k, b]) => `(${a} ${k} ${b})`),
        tie('filter').map((f) => `not ${f}`),
      ),
    }));
    await fc.assert(
      fc.asyncProperty(filter, async (f) => {
        await agree(f);
      }),
      { numRuns: 400 },
    );
  });
});
