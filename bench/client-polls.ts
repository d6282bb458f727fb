/**
 * Devices that keep their own update client, polling as they do in the field: 200 simulated SWUpdate devices
 * (hawkBit DDI: GatewayToken, the base poll, configData once when linked) and 200 simulated mender-client devices
 * (a signed auth request, inventory, then `POST /api/devices/v2/.../deployments/next`), in one process, each
 * polling every 10 s against one server (`fleetd server` child process, SQLite), with no update pending.
 * First each kind alone and FleetD's own heartbeat alone (the same count, the same interval), then both client
 * kinds together for the long run. The server's CPU time per poll is the cost compared; every answer is checked.
 * Run: `npx tsc -p tsconfig.build.json && node dist/bench/client-polls.js`
 * (BENCH_DEVICES per kind, default 200; BENCH_SECONDS of the long run, default 300; BENCH_PHASE_SECONDS, default 60).
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { DEFAULT_THRESHOLDS } from '../src/core/device.js';
import {
  deviceCredential,
  hashSecret,
  newSecret,
  splitDeviceCredential,
} from '../src/registry/credentials.js';
import { openSqliteStore } from '../src/store/sqlite/connect.js';
import { fmtInt, log, percentile, seedDevices, spawnFleetd, tempDir } from './support.js';

const DEVICES = Number(process.env.BENCH_DEVICES ?? 200);
const LONG_SECONDS = Number(process.env.BENCH_SECONDS ?? 300);
const PHASE_SECONDS = Number(process.env.BENCH_PHASE_SECONDS ?? 60);
const INTERVAL_MS = 10_000;

type Kind = 'heartbeat' | 'ddi' | 'mender';

interface Tally {
  polls: number;
  errors: number;
  latencies: number[];
  firstError?: string;
}

/** One simulated device: its set-up requests (not counted) and its poll. */
interface Device {
  setUp(): Promise<void>;
  poll(): Promise<void>;
}

async function main(): Promise<void> {
  const dir = tempDir('fleetd-bench-clients-');
  const store = await openSqliteStore(join(dir.path, 'fleetd.db'));
  const now = Date.now();
  const native = Array.from({ length: DEVICES }, (_, i) => `hb-${String(i).padStart(5, '0')}`);
  await seedDevices(store, DEVICES, (i) => ({ id: native[i]! }), now);
  const credentials = native.map(deviceCredential);
  await store.setCredentials(
    native.map((id, i) => ({
      id,
      credentialHash: hashSecret(splitDeviceCredential(credentials[i]!)!.secret),
    })),
    { now, thresholds: DEFAULT_THRESHOLDS },
    'bench',
  );
  const enrollment = newSecret('enroll');
  await store.createEnrollmentToken(
    { id: 'enr_bench', usesLeft: null, expiresAt: null, tags: {}, createdAt: now },
    hashSecret(enrollment),
    'bench',
  );
  await store.close();
  const server = await spawnFleetd(dir.path, ['--no-mqtt', '--heartbeat-interval', '10s']);

  const request = async (
    method: string,
    path: string,
    headers: Record<string, string>,
    body?: string | Buffer,
  ) => {
    const answer = await fetch(`${server.url}${path}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body }),
    });
    const text = await answer.text();
    return { status: answer.status, text };
  };
  const expect = (what: string, status: number, wanted: number[]) => {
    if (!wanted.includes(status)) throw new Error(`${what}: ${status}`);
  };

  const heartbeatDevice = (i: number): Device => ({
    setUp: async () => {},
    poll: async () => {
      const r = await request(
        'POST',
        '/api/device/v1/heartbeat',
        { authorization: `Bearer ${credentials[i]}`, 'content-type': 'application/json' },
        JSON.stringify({ device_id: native[i] }),
      );
      expect('heartbeat', r.status, [200]);
    },
  });

  const ddiDevice = (i: number): Device => {
    const id = `sw-${String(i).padStart(5, '0')}`;
    const headers = { authorization: `GatewayToken ${enrollment}`, accept: 'application/json' };
    let configure = true;
    const poll = async () => {
      const r = await request('GET', `/DEFAULT/controller/v1/${id}`, headers);
      expect('DDI poll', r.status, [200]);
      const links = JSON.parse(r.text)._links ?? {};
      // SWUpdate sends its identify data when linked, then polls again a cycle later.
      if (links.configData && configure) {
        const put = await request(
          'PUT',
          `/DEFAULT/controller/v1/${id}/configData`,
          { ...headers, 'content-type': 'application/json' },
          JSON.stringify({
            id: '',
            time: '20261206T120000',
            status: { execution: 'closed', result: { finished: 'success' } },
            data: { serial: id },
          }),
        );
        expect('DDI configData', put.status, [200]);
        configure = false;
      }
    };
    return { setUp: poll, poll };
  };

  const menderDevice = (i: number): Device => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const body = Buffer.from(
      `${JSON.stringify({
        id_data: JSON.stringify({ serial: `MD-${i}` }),
        tenant_token: enrollment,
        pubkey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      })}\n`,
    );
    let token = '';
    const auth = async () => {
      const r = await request(
        'POST',
        '/api/devices/v1/authentication/auth_requests',
        {
          'content-type': 'application/json',
          'x-men-signature': sign('sha256', body, privateKey).toString('base64'),
        },
        body,
      );
      expect('Mender auth', r.status, [200]);
      token = r.text;
    };
    const headers = () => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json' });
    return {
      setUp: async () => {
        await auth();
        const inventory = await request(
          'PUT',
          '/api/devices/v1/inventory/device/attributes',
          headers(),
          JSON.stringify([
            { name: 'device_type', value: 'bench-dev' },
            { name: 'artifact_name', value: 'app-v0' },
          ]),
        );
        expect('Mender inventory', inventory.status, [200]);
      },
      poll: async () => {
        const r = await request(
          'POST',
          '/api/devices/v2/deployments/device/deployments/next',
          headers(),
          JSON.stringify({
            device_provides: { artifact_name: 'app-v0', device_type: 'bench-dev' },
            update_control_map: true,
          }),
        );
        expect('Mender deployments/next', r.status, [204]);
      },
    };
  };

  const fleets: Record<Kind, Device[]> = {
    heartbeat: Array.from({ length: DEVICES }, (_, i) => heartbeatDevice(i)),
    ddi: Array.from({ length: DEVICES }, (_, i) => ddiDevice(i)),
    mender: Array.from({ length: DEVICES }, (_, i) => menderDevice(i)),
  };

  /** Every device of the kinds polls every 10 s (spread evenly over the interval) for `seconds`. */
  async function phase(
    kinds: Kind[],
    seconds: number,
  ): Promise<{ tallies: Record<string, Tally>; cpuMs: number }> {
    const tallies: Record<string, Tally> = {};
    for (const kind of kinds) tallies[kind] = { polls: 0, errors: 0, latencies: [] };
    const cpuBefore = server.cpuSeconds() ?? 0;
    const end = Date.now() + seconds * 1000;
    const loops = kinds.flatMap((kind) =>
      fleets[kind].map(async (device, i) => {
        await delay((i / DEVICES) * INTERVAL_MS);
        for (let next = Date.now(); next < end; next += INTERVAL_MS) {
          const started = performance.now();
          const tally = tallies[kind]!;
          try {
            await device.poll();
            tally.polls++;
          } catch (error) {
            tally.errors++;
            tally.firstError ??= String(error);
          }
          tally.latencies.push(performance.now() - started);
          await delay(Math.max(0, next + INTERVAL_MS - Date.now()));
        }
      }),
    );
    await Promise.all(loops);
    return { tallies, cpuMs: ((server.cpuSeconds() ?? 0) - cpuBefore) * 1000 };
  }

  const rows: string[] = [];
  /** The server's own background work (engine ticks, sweeps) per second, taken off each phase's CPU time. */
  let idleMsPerSec = 0;
  const report = (label: string, seconds: number, measured: Awaited<ReturnType<typeof phase>>) => {
    const result = { ...measured, cpuMs: Math.max(0, measured.cpuMs - idleMsPerSec * seconds) };
    const all = Object.values(result.tallies);
    const polls = all.reduce((n, t) => n + t.polls, 0);
    const errors = all.reduce((n, t) => n + t.errors, 0);
    const latencies = all.flatMap((t) => t.latencies);
    const row =
      `${label}: ${fmtInt(polls)} polls, ${errors} errors, server CPU ${(result.cpuMs / Math.max(1, polls)).toFixed(2)} ms a poll ` +
      `(${(result.cpuMs / 1000).toFixed(1)} s in all), latency p50 ${percentile(latencies, 50).toFixed(1)} ms, ` +
      `p99 ${percentile(latencies, 99).toFixed(1)} ms` +
      all.map((t) => (t.firstError ? ` [first error: ${t.firstError}]` : '')).join('');
    log(row);
    rows.push(row);
  };

  try {
    log(`setting up ${DEVICES} DDI and ${DEVICES} Mender devices`);
    for (const kind of ['ddi', 'mender'] as const) {
      for (const device of fleets[kind]) await device.setUp();
    }
    idleMsPerSec = (await phase([], PHASE_SECONDS)).cpuMs / PHASE_SECONDS;
    rows.push(`idle server: ${idleMsPerSec.toFixed(1)} ms CPU a second (taken off every row below)`);
    log(rows[0]!);
    for (const kind of ['heartbeat', 'ddi', 'mender'] as const) {
      report(
        `${DEVICES} ${kind} alone, ${PHASE_SECONDS} s`,
        PHASE_SECONDS,
        await phase([kind], PHASE_SECONDS),
      );
    }
    report(
      `${DEVICES} ddi + ${DEVICES} mender together, ${LONG_SECONDS} s`,
      LONG_SECONDS,
      await phase(['ddi', 'mender'], LONG_SECONDS),
    );
    process.stdout.write(
      `every device polls every ${INTERVAL_MS / 1000} s, one server:\n${rows.join('\n')}\n`,
    );
  } finally {
    await server.stop();
    dir.remove();
  }
}

await main();
