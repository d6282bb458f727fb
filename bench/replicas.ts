/**
 * FleetD on PostgreSQL, scaled out: heartbeat ingest with 1, 2 and 3 `fleetd server` replicas sharing one
 * database (autocannon against 127.0.0.1, the connections spread over the replicas), the time to create a
 * rollout to every device, and the database's size per device and per event. `npm run bench -- replicas`
 * writes its rows to BENCHMARKS.md; `node dist/bench/replicas.js` prints them alone (FLEETD_BENCH_PG names the
 * database, default postgres://postgres@127.0.0.1:5432/test; it works in a schema of its own and drops it
 * afterwards). BENCH_DEVICES sets the heartbeat fleet (default 100,000); after the heartbeats the fleet grows to
 * BENCH_ROLLOUT_DEVICES (default 1,000,000) for the rollout; both scaled by BENCH_SCALE.
 */
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import autocannon from 'autocannon';
import { sql } from 'kysely';
import pg from 'pg';
import { deviceCredential, hashSecret, splitDeviceCredential } from '../src/registry/credentials.js';
import { openPostgresStore } from '../src/store/postgres/connect.js';
import {
  type BenchResult,
  type Child,
  fmtInt,
  fmtMs,
  log,
  random,
  scaled,
  seedDevices,
  spawnFleetd,
  tempDir,
} from './support.js';

const DEVICES = scaled(Number(process.env.BENCH_DEVICES ?? 100_000), 1_000);
const ROLLOUT_DEVICES = Math.max(
  DEVICES,
  scaled(Number(process.env.BENCH_ROLLOUT_DEVICES ?? 1_000_000), 1_000),
);
const CONNECTIONS = 48;
const PER_CONNECTION = 500;
const DURATION_SEC = scaled(15, 2);
const TARGET_RPS = 8_000;
const TARGET_ROLLOUT_S = 30;
const BASE = process.env.FLEETD_BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/test';

const deviceId = (i: number) => `hb-${String(i).padStart(6, '0')}`;

function heartbeatRequests(credentials: string[], seed: number): autocannon.Request[] {
  const rnd = random(seed);
  return Array.from({ length: CONNECTIONS * PER_CONNECTION }, () => {
    const i = Math.floor(rnd() * credentials.length);
    return {
      method: 'POST',
      path: '/api/device/v1/heartbeat',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${credentials[i]}` },
      body: JSON.stringify({
        device_id: deviceId(i),
        firmware_version: '2.3.0',
        battery: Math.round(rnd() * 100),
        metrics: { cpu: Math.round(rnd() * 1000) / 10 },
      }),
    };
  });
}

/** Autocannon against every replica at once, the connections split evenly; totals over all of them. */
async function ingest(replicas: Child[], credentials: string[], seconds: number, seed: number) {
  const requests = heartbeatRequests(credentials, seed);
  const per = CONNECTIONS / replicas.length;
  const cpu0 = replicas.map((r) => r.cpuSeconds() ?? 0);
  const results = await Promise.all(
    replicas.map((replica, n) => {
      let connection = 0;
      return autocannon({
        url: replica.url,
        connections: per,
        duration: seconds,
        requests: requests.slice(0, 1),
        setupClient: (client) => {
          const k = n * per + (connection++ % per);
          client.setRequests(requests.slice(k * PER_CONNECTION, (k + 1) * PER_CONNECTION));
        },
      });
    }),
  );
  const cpu = replicas.map((r, i) => ((r.cpuSeconds() ?? 0) - cpu0[i]!) / seconds);
  return {
    rps: results.reduce((s, r) => s + r.requests.average, 0),
    p99: Math.max(...results.map((r) => r.latency.p99)),
    p50: Math.max(...results.map((r) => r.latency.p50)),
    errors: results.reduce((s, r) => s + r.errors + r.non2xx, 0),
    cpu,
  };
}

export async function runReplicas(): Promise<BenchResult> {
  const schema = `fleetd_bench_${randomBytes(4).toString('hex')}`;
  const url = new URL(BASE);
  url.searchParams.set('options', `-c search_path=${schema}`);
  const admin = new pg.Client({ connectionString: BASE });
  await admin.connect();
  await admin.query(`create schema ${schema}`);
  const dir = tempDir('fleetd-bench-replicas-');
  const replicas: Child[] = [];
  const ingests: Array<Awaited<ReturnType<typeof ingest>>> = [];
  const rolloutSeconds: Record<string, number> = {};
  const tables: string[] = [];
  try {
    const store = await openPostgresStore(url.toString());
    const now = Date.now();
    const t0 = Date.now();
    const device = (i: number) => ({
      id: deviceId(i),
      hardwareType: 'pos-x200',
      firmwareVersion: '2.3.0',
      tags: { region: ['east', 'west', 'north'][i % 3]! },
      lastSeen: now - (i % 240) * 1000,
    });
    await seedDevices(store, DEVICES, device, now);
    log(`seeded ${fmtInt(DEVICES)} devices in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const ids = Array.from({ length: DEVICES }, (_, i) => deviceId(i));
    const credentials = ids.map(deviceCredential);
    await store.db.transaction().execute(async (trx) => {
      for (let i = 0; i < ids.length; i += 1000) {
        const values = ids
          .slice(i, i + 1000)
          .map((id, k) => [id, hashSecret(splitDeviceCredential(credentials[i + k]!)!.secret)] as const);
        await sql`update devices set credential_hash = v.hash from (values ${sql.join(
          values.map(([id, hash]) => sql`(${id}, ${hash})`),
        )}) as v(id, hash) where devices.id = v.id`.execute(trx);
      }
    });
    await store.close();

    for (let n = 1; n <= 3; n++) {
      replicas.push(await spawnFleetd(dir.path, ['--db', url.toString()]));
      await ingest(replicas, credentials, 3, n); // warm-up
      const r = await ingest(replicas, credentials, DURATION_SEC, 10 + n);
      ingests.push(r);
      log(
        `heartbeat ingest, ${n} replica(s) on PostgreSQL: ${fmtInt(r.rps)} req/s, p50 ${fmtMs(r.p50)}, ` +
          `p99 ${fmtMs(r.p99)}, ${r.errors} errors; replica CPU ${r.cpu.map((c) => `${Math.round(c * 100)} %`).join(', ')}`,
      );
    }

    // The fleet grows to the rollout's size (the devices beyond the heartbeat fleet have no credential).
    if (ROLLOUT_DEVICES > DEVICES) {
      const more = await openPostgresStore(url.toString());
      const t1 = Date.now();
      await seedDevices(more, ROLLOUT_DEVICES - DEVICES, (i) => device(DEVICES + i), now, 50_000);
      await more.close();
      log(
        `seeded ${fmtInt(ROLLOUT_DEVICES - DEVICES)} more devices in ${((Date.now() - t1) / 1000).toFixed(1)} s`,
      );
    }
    await admin.query(`analyze ${schema}.devices`);

    // A release, then a rollout to every device through the API of one replica.
    const token = (await import('node:fs')).readFileSync(`${dir.path}/admin-token`, 'utf8').trim();
    const auth = { authorization: `Bearer ${token}` };
    const up = await fetch(
      `${replicas[0]!.url}/api/v1/artifacts?name=pos-fw&version=2.4.0&type=firmware&hardware=pos-x200`,
      {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/octet-stream' },
        body: Buffer.alloc(1024),
      },
    );
    if (up.status !== 201) throw new Error(`upload: ${up.status} ${await up.text()}`);
    for (const [label, query] of [
      ['dry run', '?dry_run=true'],
      ['create', ''],
    ] as const) {
      const started = Date.now();
      const r = await fetch(`${replicas[0]!.url}/api/v1/rollouts${query}`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({
          name: 'everyone',
          release: 'pos-fw@2.4.0',
          filter: '',
          strategy: 'progressive',
          phases: [
            { name: 'canary', percentage: 1 },
            { name: 'rest', percentage: 100 },
          ],
        }),
      });
      if (r.status >= 300) throw new Error(`rollout ${label}: ${r.status} ${await r.text()}`);
      rolloutSeconds[label] = (Date.now() - started) / 1000;
      log(`rollout ${label} for ${fmtInt(ROLLOUT_DEVICES)} devices: ${rolloutSeconds[label].toFixed(1)} s`);
    }

    const sizes = await admin.query<{ name: string; bytes: string; rows: string }>(
      `select c.relname as name, pg_total_relation_size(c.oid) as bytes, c.reltuples::bigint as rows
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = $1 and c.relkind = 'r' order by 2 desc`,
      [schema],
    );
    await admin.query(`analyze`);
    for (const s of sizes.rows) {
      const count = await admin.query<{ n: string }>(`select count(*) as n from ${schema}.${s.name}`);
      const rows = Number(count.rows[0]!.n);
      const line =
        `table ${s.name}: ${fmtInt(rows)} rows, ${(Number(s.bytes) / 1e6).toFixed(1)} MB with indexes` +
        (rows > 0 ? ` (${fmtInt(Number(s.bytes) / rows)} bytes a row)` : '');
      log(line);
      if (rows > 0) tables.push(line);
    }
  } finally {
    await Promise.all(replicas.map((r) => r.stop()));
    await admin.query(`drop schema if exists ${schema} cascade`);
    await admin.end();
    dir.remove();
  }
  return result(ingests, rolloutSeconds, tables);
}

function result(
  ingests: Array<Awaited<ReturnType<typeof ingest>>>,
  rolloutSeconds: Record<string, number>,
  tables: string[],
): BenchResult {
  const scale = DEVICES === 100_000 ? '' : ` (${fmtInt(DEVICES)} devices, not 100,000)`;
  const rolloutScale = ROLLOUT_DEVICES === 1_000_000 ? '' : ` (not 1,000,000)`;
  const figure = (r: (typeof ingests)[number]) =>
    `${fmtInt(r.rps)} req/s, p50 ${fmtMs(r.p50)}, p99 ${fmtMs(r.p99)}, ${r.errors} errors`;
  const [one, two] = ingests as [(typeof ingests)[number], (typeof ingests)[number]];
  const create = rolloutSeconds.create!;
  return {
    rows: [
      {
        name: 'replicas (heartbeat, PostgreSQL, 1 replica)',
        figure: `${figure(one)}${scale}`,
        baseline: `target ${fmtInt(TARGET_RPS)} req/s (absolute)`,
        ratio: (one.rps / TARGET_RPS).toFixed(2),
        target: `≥ ${fmtInt(TARGET_RPS)} req/s with 100,000 devices, 0 errors`,
        pass: one.rps >= TARGET_RPS && one.errors === 0,
      },
      {
        name: 'replicas (heartbeat, PostgreSQL, 2 replicas)',
        figure: `${figure(two)}${scale}`,
        baseline: `1 replica in the same run: ${fmtInt(one.rps)} req/s`,
        ratio: (two.rps / one.rps).toFixed(2),
        target: `≥ ${fmtInt(TARGET_RPS)} req/s with 100,000 devices, 0 errors`,
        pass: two.rps >= TARGET_RPS && two.errors === 0,
      },
      {
        name: 'replicas (rollout-create, PostgreSQL)',
        figure: `${create.toFixed(1)} s for ${fmtInt(ROLLOUT_DEVICES)} devices${rolloutScale}; dry run ${rolloutSeconds['dry run']!.toFixed(1)} s`,
        baseline: 'the dry run (plan, no write) in the same run',
        ratio: (create / rolloutSeconds['dry run']!).toFixed(2),
        target: `< ${TARGET_ROLLOUT_S} s for 1,000,000 devices`,
        pass: create < TARGET_ROLLOUT_S,
      },
    ],
    details: [
      `${fmtInt(DEVICES)} devices on PostgreSQL (a schema of its own), each with its own credential; 1, 2 then 3 ` +
        `\`fleetd server\` replicas, autocannon with ${CONNECTIONS} connections split over them, 3 s warm-up then ` +
        `${DURATION_SEC} s measured; then the fleet grows to ${fmtInt(ROLLOUT_DEVICES)} devices (Store.importDevices) ` +
        "and a progressive rollout to every device is created through one replica's API.",
      ...ingests.map(
        (r, i) =>
          `- ${i + 1} replica(s): ${figure(r)}; replica CPU ${r.cpu.map((c) => `${Math.round(c * 100)} %`).join(', ')}`,
      ),
      `- Rollout to every one of ${fmtInt(ROLLOUT_DEVICES)} devices: dry run ${rolloutSeconds['dry run']!.toFixed(1)} s, ` +
        `create ${create.toFixed(1)} s`,
      ...tables.map((t) => `- ${t}`),
    ],
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { rows, details } = await runReplicas();
  for (const row of rows)
    console.log(`${row.pass ? 'pass' : 'FAIL'}  ${row.name}: ${row.figure} | ${row.target}`);
  for (const line of details) console.log(line);
}
