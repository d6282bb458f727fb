/**
 * FleetD on PostgreSQL, scaled out: heartbeat ingest with 1, 2 and 3 `fleetd server` replicas sharing one
 * database (autocannon against 127.0.0.1, the connections spread over the replicas), the time to create a
 * rollout to every device, and the database's size per device and per event. Prints its figures; run with
 * `npm run build && node dist/bench/replicas.js` (FLEETD_BENCH_PG names the database, default
 * postgres://postgres@127.0.0.1:5432/test; it works in a schema of its own and drops it afterwards).
 */
import { randomBytes } from 'node:crypto';
import autocannon from 'autocannon';
import { sql } from 'kysely';
import pg from 'pg';
import { deviceCredential, hashSecret, splitDeviceCredential } from '../src/registry/credentials.js';
import { openPostgresStore } from '../src/store/postgres/connect.js';
import { type Child, fmtInt, fmtMs, log, random, seedDevices, spawnFleetd, tempDir } from './support.js';

const DEVICES = Number(process.env.BENCH_DEVICES ?? 100_000);
const CONNECTIONS = 48;
const PER_CONNECTION = 500;
const DURATION_SEC = 15;
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

async function main(): Promise<void> {
  const schema = `fleetd_bench_${randomBytes(4).toString('hex')}`;
  const url = new URL(BASE);
  url.searchParams.set('options', `-c search_path=${schema}`);
  const admin = new pg.Client({ connectionString: BASE });
  await admin.connect();
  await admin.query(`create schema ${schema}`);
  const dir = tempDir('fleetd-bench-replicas-');
  const replicas: Child[] = [];
  try {
    const store = await openPostgresStore(url.toString());
    const now = Date.now();
    const t0 = Date.now();
    await seedDevices(
      store,
      DEVICES,
      (i) => ({
        id: deviceId(i),
        hardwareType: 'pos-x200',
        firmwareVersion: '2.3.0',
        tags: { region: ['east', 'west', 'north'][i % 3]! },
        lastSeen: now - (i % 240) * 1000,
      }),
      now,
    );
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
      log(
        `heartbeat ingest, ${n} replica(s) on PostgreSQL: ${fmtInt(r.rps)} req/s, p50 ${fmtMs(r.p50)}, ` +
          `p99 ${fmtMs(r.p99)}, ${r.errors} errors; replica CPU ${r.cpu.map((c) => `${Math.round(c * 100)} %`).join(', ')}`,
      );
    }

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
      log(`rollout ${label} for ${fmtInt(DEVICES)} devices: ${((Date.now() - started) / 1000).toFixed(1)} s`);
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
      log(
        `table ${s.name}: ${fmtInt(rows)} rows, ${(Number(s.bytes) / 1e6).toFixed(1)} MB with indexes` +
          (rows > 0 ? ` (${fmtInt(Number(s.bytes) / rows)} bytes a row)` : ''),
      );
    }
  } finally {
    await Promise.all(replicas.map((r) => r.stop()));
    await admin.query(`drop schema if exists ${schema} cascade`);
    await admin.end();
    dir.remove();
  }
}

await main();
