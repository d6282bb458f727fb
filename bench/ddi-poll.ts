/**
 * The cost of a hawkBit DDI poll (SWUpdate's `GET /DEFAULT/controller/v1/{id}`) against FleetD's own heartbeat,
 * in the same run on the same server (`fleetd server` child process, SQLite): a small fleet of devices, each
 * with its own credential, none with an update pending, polled by autocannon for a fixed time each, in turns
 * (heartbeat, DDI, heartbeat, DDI) so a machine busy with other work weighs on both alike.
 * Run: `npx tsc -p tsconfig.build.json && node dist/bench/ddi-poll.js` (BENCH_DEVICES, BENCH_SECONDS).
 */
import { join } from 'node:path';
import autocannon from 'autocannon';
import { DEFAULT_THRESHOLDS } from '../src/core/device.js';
import { deviceCredential, hashSecret, splitDeviceCredential } from '../src/registry/credentials.js';
import { openSqliteStore } from '../src/store/sqlite/connect.js';
import { fmtInt, log, seedDevices, spawnFleetd, tempDir } from './support.js';

const DEVICES = Number(process.env.BENCH_DEVICES ?? 200);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = 20;

type Kind = 'heartbeat' | 'ddi';

async function main(): Promise<void> {
  const dir = tempDir('fleetd-bench-ddi-');
  const store = await openSqliteStore(join(dir.path, 'fleetd.db'));
  const ids = Array.from({ length: DEVICES }, (_, i) => `sw-${String(i).padStart(5, '0')}`);
  const now = Date.now();
  await seedDevices(store, DEVICES, (i) => ({ id: ids[i]!, tags: { client: 'swupdate' } }), now);
  const credentials = ids.map(deviceCredential);
  await store.setCredentials(
    ids.map((id, i) => ({ id, credentialHash: hashSecret(splitDeviceCredential(credentials[i]!)!.secret) })),
    { now, thresholds: DEFAULT_THRESHOLDS },
    'bench',
  );
  await store.close();
  const server = await spawnFleetd(dir.path, ['--no-mqtt', '--heartbeat-interval', '10s']);
  try {
    const requestsOf = (kind: Kind) =>
      ids.map((id, i) =>
        kind === 'heartbeat'
          ? {
              method: 'POST' as const,
              path: '/api/device/v1/heartbeat',
              headers: { authorization: `Bearer ${credentials[i]}`, 'content-type': 'application/json' },
              body: JSON.stringify({ device_id: id }),
            }
          : {
              method: 'GET' as const,
              path: `/DEFAULT/controller/v1/${id}`,
              headers: { authorization: `TargetToken ${credentials[i]}`, accept: 'application/json' },
            },
      );
    const run = async (kind: Kind, seconds: number) => {
      const requests = requestsOf(kind);
      const perConnection = Math.max(1, Math.floor(requests.length / CONNECTIONS));
      let connection = 0;
      const result = await autocannon({
        url: server.url,
        connections: CONNECTIONS,
        duration: seconds,
        requests: requests.slice(0, 1),
        setupClient: (client) => {
          const k = connection++ % CONNECTIONS;
          client.setRequests(requests.slice(k * perConnection, (k + 1) * perConnection));
        },
      });
      return result;
    };
    await run('heartbeat', 1);
    await run('ddi', 1);
    const rows: string[] = [];
    for (const round of [1, 2]) {
      for (const kind of ['heartbeat', 'ddi'] as const) {
        const r = await run(kind, SECONDS);
        const errors = r.errors + r.non2xx + r.timeouts;
        const row = `${kind} round ${round}: ${fmtInt(r.requests.average)} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, ${fmtInt(r.requests.total)} requests, ${errors} errors`;
        log(row);
        rows.push(row);
      }
    }
    process.stdout.write(
      `${DEVICES} devices, ${CONNECTIONS} connections, ${SECONDS} s a run, same server:\n${rows.join('\n')}\n`,
    );
  } finally {
    await server.stop();
    dir.remove();
  }
}

await main();
