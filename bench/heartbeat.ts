/**
 * Heartbeat ingest of the real server (`fleetd server` child process, 100,000 registered devices, each with
 * its own credential) under autocannon, against a bare node:http server in the same run. Afterwards, the
 * store must show every acknowledged heartbeat: a benchmark that measures fast errors is worthless.
 */
import { join } from 'node:path';
import autocannon from 'autocannon';
import { deviceCredential, hashSecret, splitDeviceCredential } from '../src/registry/credentials.js';
import type { SqlStore } from '../src/store/sql-store.js';
import { openSqliteStore } from '../src/store/sqlite/connect.js';
import {
  BARE_SERVER,
  type BenchResult,
  type Child,
  FASTIFY_BASELINE,
  fmtInt,
  fmtMs,
  log,
  random,
  scaled,
  seedDevices,
  spawnFleetd,
  spawnListening,
  tempDir,
  weighted,
} from './support.js';

const DEVICES = scaled(100_000, 1_000);
const CONNECTIONS = 50;
const REQUESTS_PER_CONNECTION = Math.min(500, Math.floor(DEVICES / CONNECTIONS));
const WARMUP_SEC = scaled(3, 1);
const DURATION_SEC = scaled(15, 2);
const TARGET_RATIO = 0.6;
const TARGET_P99_MS = 20;

const REGIONS = ['northeast', 'southeast', 'midwest', 'southwest', 'west', 'northwest', 'central'];
const FIRMWARE = [
  ['2.1.0', 2],
  ['2.2.1', 3],
  ['2.3.0', 5],
] as const;

const deviceId = (i: number) => `hb-${String(i).padStart(6, '0')}`;
const firmwareOf = (i: number) => weighted(FIRMWARE, (i % 10) / 10);

/**
 * Gives every device its own credential. Store.setCredential is one transaction plus an audit event per
 * device; 100,000 of those only slow the set-up, so the hashes are written in one transaction through the
 * store's Kysely instance (no events: the benchmark does not read them).
 */
async function issueCredentials(store: SqlStore, ids: string[]): Promise<string[]> {
  const credentials = ids.map(deviceCredential);
  await store.db.transaction().execute(async (trx) => {
    for (const [i, id] of ids.entries()) {
      const hash = hashSecret(splitDeviceCredential(credentials[i]!)!.secret);
      await trx.updateTable('devices').set({ credential_hash: hash }).where('id', '=', id).execute();
    }
  });
  return credentials;
}

interface Load {
  result: autocannon.Result;
  /** Devices whose heartbeat was answered 200. */
  acked: Set<number>;
  /** The first answer that was not a 200, if any. */
  firstFailure: string | undefined;
  /** CPU use of the server and of this (load-generating) process, as a fraction of one core. */
  serverCpu: number | undefined;
  clientCpu: number;
}

/**
 * Heartbeats from random devices, each with its own credential and telemetry body: a random sample of
 * distinct devices, REQUESTS_PER_CONNECTION for each connection, which cycles through its share. The
 * requests are built before the run and handed to each connection (setupClient) rather than built in
 * `setupRequest`: that costs autocannon ~25 µs a request, which made it, not the bare server, the
 * bottleneck of the baseline on a 2-core machine (autocannon at 99 % CPU, bare server at ~70 %).
 * Autocannon still builds each connection's share when it starts (~10 µs a request), hence a share of 500.
 */
function heartbeats(
  credentials: string[],
  seed: number,
  onResponse: (device: number, status: number, body: string) => void,
) {
  const rnd = random(seed);
  const order = Array.from({ length: DEVICES }, (_, i) => i);
  for (let k = order.length - 1; k > 0; k--) {
    const j = Math.floor(rnd() * (k + 1));
    [order[k], order[j]] = [order[j]!, order[k]!];
  }
  return order.map(
    (i): autocannon.Request => ({
      method: 'POST',
      path: '/api/device/v1/heartbeat',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${credentials[i]}` },
      body: JSON.stringify({
        device_id: deviceId(i),
        firmware_version: firmwareOf(i),
        timestamp: new Date().toISOString(),
        location: { lat: 40 + rnd(), lon: -74 + rnd() },
        battery: Math.round(rnd() * 100),
        signal_strength: -50 - Math.round(rnd() * 40),
        metrics: { cpu: Math.round(rnd() * 1000) / 10, app: 'ok' },
      }),
      onResponse: (status, body) => onResponse(i, status, body),
    }),
  );
}

async function load(server: Child, credentials: string[], seconds: number, seed: number): Promise<Load> {
  const acked = new Set<number>();
  let firstFailure: string | undefined;
  const requests = heartbeats(credentials, seed, (device, status, body) => {
    if (status === 200) acked.add(device);
    else firstFailure ??= `${status} ${body.slice(0, 200)}`;
  });
  let connection = 0;
  const cpu0 = server.cpuSeconds();
  const client0 = process.cpuUsage();
  const result = await autocannon({
    url: server.url,
    connections: CONNECTIONS,
    pipelining: 1,
    duration: seconds,
    // Autocannon deep-copies its options for every connection: the requests are handed over below instead.
    requests: requests.slice(0, 1),
    setupClient: (client) => {
      const k = connection++ % CONNECTIONS;
      client.setRequests(requests.slice(k * REQUESTS_PER_CONNECTION, (k + 1) * REQUESTS_PER_CONNECTION));
    },
  });
  const cpu1 = server.cpuSeconds();
  const client = process.cpuUsage(client0);
  return {
    result,
    acked,
    firstFailure,
    serverCpu: cpu0 === undefined || cpu1 === undefined ? undefined : (cpu1 - cpu0) / result.duration,
    clientCpu: (client.user + client.system) / 1e6 / result.duration,
  };
}

async function warmAndMeasure(server: Child, credentials: string[]): Promise<Load> {
  const warm = await load(server, credentials, WARMUP_SEC, 1);
  const measured = await load(server, credentials, DURATION_SEC, 2);
  for (const i of warm.acked) measured.acked.add(i);
  measured.firstFailure ??= warm.firstFailure;
  return measured;
}

const rps = (l: Load) => l.result.requests.average;
const pct = (x: number | undefined) => (x === undefined ? 'n/a' : `${Math.round(x * 100)} %`);
const describe = (l: Load) =>
  `${fmtInt(rps(l))} req/s; latency p50 ${fmtMs(l.result.latency.p50)}, p99 ${fmtMs(l.result.latency.p99)}, ` +
  `max ${fmtMs(l.result.latency.max)}; ${fmtInt(l.result['2xx'])} 2xx, ${l.result.non2xx} non-2xx, ` +
  `${l.result.errors} errors (${l.result.timeouts} timeouts); CPU: server ${pct(l.serverCpu)}, ` +
  `autocannon ${pct(l.clientCpu)}${l.firstFailure ? `; first failure: ${l.firstFailure}` : ''}`;

export async function runHeartbeat(): Promise<BenchResult> {
  const dir = tempDir('fleetd-bench-heartbeat-');
  try {
    const file = join(dir.path, 'fleetd.db');
    const now = Date.now();
    const store = await openSqliteStore(file);
    const seedRandom = random(1);
    // Every device online (last heard from within the last 4 minutes): heartbeats change no status.
    await seedDevices(
      store,
      DEVICES,
      (i) => ({
        id: deviceId(i),
        hardwareType: 'pos-x200',
        firmwareVersion: firmwareOf(i),
        tags: { region: REGIONS[i % REGIONS.length]! },
        lastSeen: now - Math.floor(seedRandom() * 240_000),
      }),
      now,
    );
    log('issuing credentials');
    const credentials = await issueCredentials(
      store,
      Array.from({ length: DEVICES }, (_, i) => deviceId(i)),
    );
    await store.close();

    log(`bare node:http baseline: ${WARMUP_SEC} s warm-up + ${DURATION_SEC} s, ${CONNECTIONS} connections`);
    const bareServer = await spawnListening('bare', [BARE_SERVER]);
    const bare = await warmAndMeasure(bareServer, credentials).finally(() => bareServer.stop());
    log(`bare: ${describe(bare)}`);

    log(`minimal Fastify baseline: ${WARMUP_SEC} s warm-up + ${DURATION_SEC} s, ${CONNECTIONS} connections`);
    const fastifyServer = await spawnListening('fastify', [FASTIFY_BASELINE]);
    const framework = await warmAndMeasure(fastifyServer, credentials).finally(() => fastifyServer.stop());
    log(`fastify: ${describe(framework)}`);

    log(`fleetd server: ${WARMUP_SEC} s warm-up + ${DURATION_SEC} s, ${CONNECTIONS} connections`);
    const since = Date.now();
    const server = await spawnFleetd(dir.path);
    const real = await warmAndMeasure(server, credentials).finally(() => server.stop());
    log(`fleetd: ${describe(real)}`);

    // Every heartbeat answered 200 must be in the store: last_seen moved past the start of the run.
    const check = await openSqliteStore(file);
    const written = new Set(
      (await check.db.selectFrom('devices').select('id').where('last_seen', '>=', since).execute()).map(
        (r) => r.id,
      ),
    );
    await check.close();
    const missing = [...real.acked].filter((i) => !written.has(deviceId(i))).length;
    const verified = real.acked.size > 0 && missing === 0;
    const verification =
      `${fmtInt(real.acked.size)} distinct devices acknowledged (warm-up included); the store shows ` +
      `${fmtInt(written.size)} devices heard from since the start; acknowledged but not written: ${missing}`;
    log(`verification: ${verification}`);

    const ratio = rps(real) / rps(bare);
    const p99 = real.result.latency.p99;
    const clean = real.result.errors === 0 && real.result.non2xx === 0;
    return {
      rows: [
        {
          name: 'heartbeat',
          figure: `${fmtInt(rps(real))} req/s, p50 ${fmtMs(real.result.latency.p50)}, p99 ${fmtMs(p99)}`,
          baseline: `bare node:http ${fmtInt(rps(bare))} req/s, p99 ${fmtMs(bare.result.latency.p99)}`,
          ratio: ratio.toFixed(2),
          target: `ratio ≥ ${TARGET_RATIO}, p99 < ${TARGET_P99_MS} ms, 0 errors, all writes found`,
          pass: ratio >= TARGET_RATIO && p99 < TARGET_P99_MS && clean && verified,
        },
        {
          name: 'heartbeat (vs the framework alone)',
          figure: `${fmtInt(rps(real))} req/s`,
          baseline: `minimal Fastify app, same route and schema, no storage: ${fmtInt(rps(framework))} req/s (${(rps(framework) / rps(bare)).toFixed(2)} of bare node:http)`,
          ratio: (rps(real) / rps(framework)).toFixed(2),
          target: 'information: what authentication and the durable write cost on top of Fastify',
          pass: true,
        },
      ],
      details: [
        `POST /api/device/v1/heartbeat from ${fmtInt(DEVICES)} registered devices, each with its own credential; ` +
          `${fmtInt(REQUESTS_PER_CONNECTION * CONNECTIONS)} random distinct devices per phase (another sample for ` +
          `warm-up and measurement), each connection cycling through its ${REQUESTS_PER_CONNECTION}, with the ` +
          `device's credential and its own telemetry body. autocannon (in the bench process), ${CONNECTIONS} connections, pipelining 1, ${WARMUP_SEC} s warm-up then ${DURATION_SEC} s measured; ` +
          `each server in its own child process (2 cores: one for the server, one for autocannon). Latencies ` +
          `are whole milliseconds; max includes autocannon's start-up (~0.3 s building the requests).`,
        `- fleetd (\`fleetd server --log-level warn\`, SQLite, synchronous=normal): ${describe(real)}`,
        `- bare node:http (reads the body, same JSON answer): ${describe(bare)}`,
        `- minimal Fastify app (same route and body schema, no logger, no storage; bench/fastify-baseline.ts): ${describe(framework)}`,
        `- Writes: ${verification}${verified ? '' : ' — VERIFICATION FAILED'}`,
      ],
    };
  } finally {
    dir.remove();
  }
}
