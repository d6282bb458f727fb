/**
 * Devices over mutual TLS. Two questions, each answered against a baseline in the same run:
 * 1. Heartbeat ingest over mTLS with resumed sessions (every device reconnects every RECONNECT_EVERY requests)
 *    against the same server and fleet over plain HTTP with bearer credentials: `fleetd server --tls auto`
 *    and `fleetd server`, each a child process, the same load generator for both (tls-load.ts).
 * 2. A fleet reconnecting at once: every device opens a new TLS connection with its own certificate and sends
 *    one heartbeat, at most IN_FLIGHT at a time, first with full handshakes, then resuming the sessions the
 *    first round left; against a bare node:https server doing the same handshakes (bare-tls-server.ts).
 * Afterwards the store must show every acknowledged heartbeat, as in heartbeat.ts.
 */
import { join } from 'node:path';
import type { SqlStore } from '../src/store/sql-store.js';
import { openSqliteStore } from '../src/store/sqlite/connect.js';
import {
  BARE_SERVER,
  BARE_TLS_SERVER,
  type BenchResult,
  type BenchRow,
  type Child,
  fmtInt,
  fmtMs,
  log,
  percentile,
  scaled,
  spawnFleetd,
  spawnListening,
  tempDir,
} from './support.js';
import { type BenchDevice, type Fleet, seedTlsFleet } from './tls-fleet.js';
import {
  handshakeStorm,
  type PhaseResult,
  SteadyDevices,
  type StormResult,
  type Transport,
} from './tls-load.js';

const DEVICES = scaled(10_000, 200);
const STEADY_DEVICES = 50;
/** Requests a device sends on one connection before it closes it and connects again (fewer in a scaled run). */
const RECONNECT_EVERY = scaled(100, 10);
const WARMUP_SEC = scaled(3, 1);
const DURATION_SEC = scaled(15, 2);
const IN_FLIGHT = 500;
/** Devices of the warm-up round before the handshake storms (their sessions are not used). */
const STORM_WARMUP = Math.min(500, DEVICES);
const TARGET_RATIO = 0.7;
/** The issue sets no figure for handshakes: this bound is this file's, so that a slide is noticed. */
const TARGET_HANDSHAKE_RATIO = 0.5;
/** Resumption must actually happen: a small share may fall back to a full handshake (a ticket not yet received). */
const TARGET_RESUMED_SHARE = 0.95;

const FLEETD_TLS = ['--tls', 'auto', '--no-mqtt'];
const FLEETD_PLAIN = ['--no-mqtt'];

interface Measured<T> {
  result: T;
  /** CPU of the server and of this (load-generating) process, as a fraction of one core. */
  serverCpu: number | undefined;
  clientCpu: number;
}

async function withCpu<T extends { seconds: number }>(
  server: Child,
  run: () => Promise<T>,
): Promise<Measured<T>> {
  const server0 = server.cpuSeconds();
  const client0 = process.cpuUsage();
  const result = await run();
  const server1 = server.cpuSeconds();
  const client = process.cpuUsage(client0);
  return {
    result,
    serverCpu:
      server0 === undefined || server1 === undefined ? undefined : (server1 - server0) / result.seconds,
    clientCpu: (client.user + client.system) / 1e6 / result.seconds,
  };
}

const rate = (r: PhaseResult) => r.acknowledged / r.seconds;
const share = (part: number, whole: number) => (whole === 0 ? 0 : part / whole);
const pct = (x: number | undefined) => (x === undefined ? 'n/a' : `${Math.round(x * 100)} %`);
const p = (r: PhaseResult, q: number) => fmtMs(percentile(r.latencies, q));
const describe = (m: Measured<PhaseResult>, unit: string) =>
  `${fmtInt(rate(m.result))} ${unit}; latency p50 ${p(m.result, 50)}, p99 ${p(m.result, 99)}; ` +
  `${fmtInt(m.result.acknowledged)} acknowledged, ${m.result.errors} errors; ${fmtInt(m.result.connections)} ` +
  `connections, ${fmtInt(m.result.resumed)} resumed (${pct(share(m.result.resumed, m.result.connections))})` +
  (m.result.protocols.size > 0 ? ` over ${[...m.result.protocols].join(', ')}; ` : '; ') +
  `CPU: server ${pct(m.serverCpu)}, load generator ${pct(m.clientCpu)}` +
  (m.result.firstFailure ? `; first failure: ${m.result.firstFailure}` : '');

/** Warm-up then the measured phase of STEADY_DEVICES devices against one server. */
async function steady(server: Child, transport: Transport, devices: BenchDevice[], caPem: string) {
  const load = new SteadyDevices(new URL(server.url), transport, devices, caPem, RECONNECT_EVERY);
  try {
    const warm = await load.run(WARMUP_SEC);
    const measured = await withCpu(server, () => load.run(DURATION_SEC));
    measured.result.errors += warm.errors;
    measured.result.firstFailure ??= warm.firstFailure;
    return { measured, lastAcked: load.lastAcked };
  } finally {
    load.close();
  }
}

interface Storms {
  full: Measured<StormResult>;
  resumed: Measured<StormResult>;
  fullStarted: number;
  resumedStarted: number;
}

/** A warm-up round, then every device with a full handshake, then every device resuming its session. */
async function storms(server: Child, fleet: Fleet): Promise<Storms> {
  const url = new URL(server.url);
  await handshakeStorm(
    url,
    fleet.devices.slice(0, STORM_WARMUP),
    fleet.caPem,
    IN_FLIGHT,
    undefined,
    new Map(),
  );
  const sessions = new Map<string, Buffer>();
  const fullStarted = Date.now();
  const full = await withCpu(server, () =>
    handshakeStorm(url, fleet.devices, fleet.caPem, IN_FLIGHT, undefined, sessions),
  );
  const resumedStarted = Date.now();
  const resumed = await withCpu(server, () =>
    handshakeStorm(url, fleet.devices, fleet.caPem, IN_FLIGHT, sessions, new Map()),
  );
  return { full, resumed, fullStarted, resumedStarted };
}

/** Devices' last_seen and the sequence number of the heartbeat the store holds for them. */
async function storedHeartbeats(
  file: string,
): Promise<Map<string, { lastSeen: number; seq: number | undefined }>> {
  const store: SqlStore = await openSqliteStore(file);
  try {
    const rows = await store.db.selectFrom('devices').select(['id', 'last_seen', 'metrics']).execute();
    return new Map(
      rows.map((r) => [
        r.id,
        {
          lastSeen: Number(r.last_seen ?? 0),
          seq: r.metrics === null ? undefined : (JSON.parse(r.metrics) as { seq?: number }).seq,
        },
      ]),
    );
  } finally {
    await store.close();
  }
}

/** Devices whose last acknowledged heartbeat (by sequence number) the store does not hold. */
function missingSteady(
  stored: Map<string, { seq: number | undefined }>,
  lastAcked: Map<string, number>,
): number {
  return [...lastAcked].filter(([id, seq]) => (stored.get(id)?.seq ?? -1) < seq).length;
}

/** Devices acknowledged by a storm that the store has not heard from since the storm began. */
function missingStorm(stored: Map<string, { lastSeen: number }>, acked: Set<string>, since: number): number {
  return [...acked].filter((id) => (stored.get(id)?.lastSeen ?? 0) < since).length;
}

export async function runTls(): Promise<BenchResult> {
  const dir = tempDir('fleetd-bench-tls-');
  try {
    const file = join(dir.path, 'fleetd.db');
    const setup = Date.now();
    const seeding = await openSqliteStore(file);
    const fleet = await seedTlsFleet(seeding, dir.path, DEVICES).finally(() => seeding.close());
    const setupSec = (Date.now() - setup) / 1000;
    // Each side of the comparison its own devices, so the store check sees each side's last write.
    const plainDevices = fleet.devices.slice(0, STEADY_DEVICES);
    const tlsDevices = fleet.devices.slice(STEADY_DEVICES, 2 * STEADY_DEVICES);

    const phase = `${WARMUP_SEC} s warm-up + ${DURATION_SEC} s, ${STEADY_DEVICES} devices, reconnecting every ${RECONNECT_EVERY} requests`;
    log(`fleetd over plain HTTP, bearer credentials: ${phase}`);
    let server = await spawnFleetd(dir.path, FLEETD_PLAIN);
    const plain = await steady(server, 'bearer', plainDevices, fleet.caPem).finally(() => server.stop());
    log(`plain: ${describe(plain.measured, 'req/s')}`);

    log(`fleetd --tls auto, client certificates: ${phase}`);
    server = await spawnFleetd(dir.path, FLEETD_TLS);
    const mtls = await steady(server, 'mtls', tlsDevices, fleet.caPem).finally(() => server.stop());
    log(`mTLS: ${describe(mtls.measured, 'req/s')}`);

    const afterSteady = await storedHeartbeats(file);
    const steadyMissing =
      missingSteady(afterSteady, plain.lastAcked) + missingSteady(afterSteady, mtls.lastAcked);

    log(`handshake storms against fleetd --tls auto: ${fmtInt(DEVICES)} devices, ${IN_FLIGHT} in flight`);
    server = await spawnFleetd(dir.path, FLEETD_TLS);
    const real = await storms(server, fleet).finally(() => server.stop());
    log(`fleetd full: ${describe(real.full, 'handshakes/s')}`);
    log(`fleetd resumed: ${describe(real.resumed, 'handshakes/s')}`);
    const afterStorms = await storedHeartbeats(file);
    const stormMissing =
      missingStorm(afterStorms, real.full.result.acked, real.fullStarted) +
      missingStorm(afterStorms, real.resumed.result.acked, real.resumedStarted);

    // What TLS costs Node itself under the same load: bare servers, no routing, no storage.
    log(`bare node:http and node:https: ${phase}`);
    const pki = join(dir.path, 'pki');
    const bareTls = () =>
      spawnListening('bare-tls', [
        BARE_TLS_SERVER,
        join(pki, 'server.crt'),
        join(pki, 'server.key'),
        join(pki, 'ca.crt'),
      ]);
    server = await spawnListening('bare', [BARE_SERVER]);
    const barePlain = await steady(server, 'bearer', plainDevices, fleet.caPem).finally(() => server.stop());
    log(`bare node:http: ${describe(barePlain.measured, 'req/s')}`);
    server = await bareTls();
    const bareMtls = await steady(server, 'mtls', tlsDevices, fleet.caPem).finally(() => server.stop());
    log(`bare node:https: ${describe(bareMtls.measured, 'req/s')}`);

    log('handshake storms against a bare node:https server');
    server = await bareTls();
    const bare = await storms(server, fleet).finally(() => server.stop());
    log(`bare full: ${describe(bare.full, 'handshakes/s')}`);
    log(`bare resumed: ${describe(bare.resumed, 'handshakes/s')}`);

    const steadyAcked = plain.lastAcked.size + mtls.lastAcked.size;
    const steadyVerified = steadyAcked > 0 && steadyMissing === 0;
    const stormAcked = real.full.result.acked.size + real.resumed.result.acked.size;
    const stormVerified = stormAcked > 0 && stormMissing === 0;
    const verification =
      `steady phases: ${steadyAcked} devices acknowledged, the last acknowledged heartbeat of each (by its ` +
      `sequence number) missing from the store for ${steadyMissing}; storms: ${fmtInt(stormAcked)} ` +
      `acknowledgements (both rounds), the device not heard from since its round began for ${stormMissing}`;
    log(`verification: ${verification}`);

    const m = mtls.measured.result;
    const ratio = rate(m) / rate(plain.measured.result);
    // In the measured phase every connection opened is a reconnection (the warm-up opened the first ones).
    const resumedShare = share(m.resumed, m.connections);
    const steadyClean = m.errors === 0 && plain.measured.result.errors === 0;
    const stormRow = (
      name: string,
      ours: Measured<StormResult>,
      base: Measured<StormResult>,
      resumed: boolean,
    ) => {
      const r = ours.result;
      const handshakeRatio = rate(r) / rate(base.result);
      const resumedOk =
        !resumed ||
        (share(r.resumed, r.connections) >= TARGET_RESUMED_SHARE &&
          share(base.result.resumed, base.result.connections) >= TARGET_RESUMED_SHARE);
      return {
        name,
        figure: `${fmtInt(rate(r))} handshakes/s, p99 ${p(r, 99)}${resumed ? `, ${pct(share(r.resumed, r.connections))} resumed` : ''}`,
        baseline: `bare node:https ${fmtInt(rate(base.result))} handshakes/s${resumed ? `, ${pct(share(base.result.resumed, base.result.connections))} resumed` : ''}`,
        ratio: handshakeRatio.toFixed(2),
        target:
          `ratio ≥ ${TARGET_HANDSHAKE_RATIO}${resumed ? `, ≥ ${TARGET_RESUMED_SHARE * 100} % resumed` : ''}, ` +
          '0 errors, all writes found',
        pass:
          handshakeRatio >= TARGET_HANDSHAKE_RATIO &&
          resumedOk &&
          r.errors === 0 &&
          base.result.errors === 0 &&
          stormVerified,
      } satisfies BenchRow;
    };
    return {
      rows: [
        {
          name: 'tls heartbeat over mTLS, resumed sessions',
          figure: `${fmtInt(rate(m))} req/s, p50 ${p(m, 50)}, p99 ${p(m, 99)}, ${pct(resumedShare)} of reconnections resumed`,
          baseline: `same server over plain HTTP, bearer credentials: ${fmtInt(rate(plain.measured.result))} req/s, p99 ${p(plain.measured.result, 99)}`,
          ratio: ratio.toFixed(2),
          target: `ratio ≥ ${TARGET_RATIO}, ≥ ${TARGET_RESUMED_SHARE * 100} % resumed, 0 errors, all writes found`,
          pass:
            ratio >= TARGET_RATIO &&
            m.connections > 0 &&
            resumedShare >= TARGET_RESUMED_SHARE &&
            steadyClean &&
            steadyVerified,
        },
        {
          name: "tls heartbeat (Node's TLS alone)",
          figure: `bare node:https ${fmtInt(rate(bareMtls.measured.result))} req/s, p99 ${p(bareMtls.measured.result, 99)}`,
          baseline: `bare node:http ${fmtInt(rate(barePlain.measured.result))} req/s, p99 ${p(barePlain.measured.result, 99)}`,
          ratio: (rate(bareMtls.measured.result) / rate(barePlain.measured.result)).toFixed(2),
          target: 'information: what TLS costs Node itself, the same load against servers that only answer',
          pass: true,
        },
        stormRow(`tls handshakes, ${fmtInt(DEVICES)} devices at once (full)`, real.full, bare.full, false),
        stormRow(
          `tls handshakes, ${fmtInt(DEVICES)} devices at once (resumed)`,
          real.resumed,
          bare.resumed,
          true,
        ),
      ],
      details: [
        `${fmtInt(DEVICES)} registered devices, each with a bearer credential and its own ECDSA P-256 client ` +
          `certificate from the FleetD CA (its own key and CSR, signed by src/pki; set-up ${setupSec.toFixed(0)} s). ` +
          'Load from the bench process with node:https (node:http for plain HTTP): one keep-alive agent per device ' +
          "with the device's certificate and key and the FleetD CA, whose session cache resumes TLS sessions " +
          '(bench/tls-load.ts). Each server a child process, `--no-mqtt`, SQLite; 2 cores shared by server and load.',
        `Heartbeat: ${STEADY_DEVICES} devices (other ones for each side) heartbeating without pause, each on its own ` +
          `connection, closed every ${RECONNECT_EVERY} requests and opened again (TLS: resuming the session); ` +
          `${WARMUP_SEC} s warm-up then ${DURATION_SEC} s measured.`,
        `- fleetd --tls auto, client certificates: ${describe(mtls.measured, 'req/s')}`,
        `- fleetd, plain HTTP, bearer credentials: ${describe(plain.measured, 'req/s')}`,
        `- bare node:https, client certificates verified (bench/bare-tls-server.ts): ${describe(bareMtls.measured, 'req/s')}`,
        `- bare node:http (bench/bare-server.ts): ${describe(barePlain.measured, 'req/s')}`,
        `Handshakes: every device opens a new TLS connection with its certificate, sends one heartbeat and closes ` +
          `(\`connection: close\`), ${IN_FLIGHT} in flight, after a warm-up round of ${fmtInt(STORM_WARMUP)}; first ` +
          'with full handshakes, then all again offering the session the first round left. The baseline asks for ' +
          "and verifies the client certificate as FleetD's listener does, with the same certificate, and answers " +
          'without routing or storage (bench/bare-tls-server.ts). Latency: from opening the connection to the whole answer.',
        `- fleetd full handshakes: ${describe(real.full, 'handshakes/s')}`,
        `- fleetd resumed: ${describe(real.resumed, 'handshakes/s')}`,
        `- bare node:https full handshakes: ${describe(bare.full, 'handshakes/s')}`,
        `- bare node:https resumed: ${describe(bare.resumed, 'handshakes/s')}`,
        `- Writes: ${verification}${steadyVerified && stormVerified ? '' : ' — VERIFICATION FAILED'}`,
      ],
    };
  } finally {
    dir.remove();
  }
}
