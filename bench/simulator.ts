/**
 * Speed and memory of `fleetd sim run` (a child process, as a user runs it):
 * - the goal: seed 000's vehicle fleet at 100,000 devices over 7 days (a canary → early → full rollout),
 *   against a raw-SQL floor: the same number of device rows, update rows, heartbeat writes, report writes and
 *   events written by bare prepared statements on the same schema (in memory, as the simulator's own store);
 * - 1,000,000 devices over a day: that it runs, how long, and the peak memory;
 * - the layers: 10,000 POS terminals over a day with devices entering at the store (default) and over HTTP.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import type { SimResult } from '../src/sim/result.js';
import { memoryImage } from '../src/store/open.js';
import { openSqliteStore } from '../src/store/sqlite/connect.js';
import { type BenchResult, FLEETD, fmtInt, log, scaled, tempDir } from './support.js';

const TIMEOUT_MS = 30 * 60_000;
const GOAL_S = 60;

const vehicles = (count: number, duration: string, maxConcurrent: number) => `name: bench-vehicles-${count}
start: 2026-03-02T00:00:00Z
duration: ${duration}
seed: 0
fleet:
  - count: ${count}
    id_prefix: veh-
    profile: vehicle
    hardware_type: tcu-4
    firmware: { "2.3.1": 0.8, "2.3.0": 0.2 }
    timezones: { America/New_York: 0.35, America/Chicago: 0.3, America/Denver: 0.1, America/Los_Angeles: 0.25 }
    tags: { region: { east: 0.35, central: 0.4, west: 0.25 } }
    install_seconds: { lognormal: { median: 900, sigma: 0.3 } }
    failure_rate: 0.01
rollouts:
  - at: 14h
    spec:
      name: tcu-2.4.0
      release: tcu-fw@2.4.0
      filter: ""
      strategy: progressive
      max_concurrent: ${maxConcurrent}
      phases:
        - { name: canary, percentage: 1, wait: 24h, success_rate: 95 }
        - { name: early, percentage: 10, wait: 12h, success_rate: 90 }
        - { name: full, percentage: 100, success_rate: 85 }
`;

const POS = `name: bench-pos-layers
start: 2026-03-02T00:00:00Z
duration: 1d
seed: 11
fleet:
  - count: 10000
    id_prefix: pos-
    profile: pos
    hardware_type: pos-x200
    firmware: { "2.3.0": 1 }
    timezones: { America/New_York: 0.5, America/Los_Angeles: 0.5 }
    install_seconds: { uniform: [300, 900] }
    failure_rate: 0.02
rollouts:
  - at: 1h
    spec:
      name: pos-2.4.0
      release: pos-fw@2.4.0
      filter: ""
      strategy: scheduled
      window: { start: "20:00", end: "23:00" }
      max_concurrent: 500
`;

function simulate(dir: string, name: string, scenario: string, layer: 'store' | 'http' = 'store') {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, scenario);
  const child = spawn(process.execPath, [FLEETD, '--output', 'json', 'sim', 'run', file, '--layer', layer], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
  return new Promise<SimResult>((resolve, reject) => {
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      // Exit code 1 means a check failed; the figures are still the run's.
      if (signal !== null || out.trim() === '') {
        reject(new Error(`sim run ${name} --layer ${layer}: ${signal ?? code}\n${err.slice(-2000)}`));
        return;
      }
      resolve(JSON.parse(out) as SimResult);
    });
  });
}

/**
 * The floor under a simulation: its writes without FleetD. The run's devices and update rows inserted in
 * bulk, then its heartbeats (a device row's last_seen), reports (an update row's state, through the same
 * indexes and count triggers) and events, as bare prepared statements in transactions of `batch` writes,
 * on FleetD's own schema in memory.
 */
async function rawFloor(r: SimResult, batch = 1_000): Promise<number> {
  // FleetD's schema, migrated, as a fresh in-memory database of its own.
  const empty = await openSqliteStore(':memory:');
  const sqlite = new BetterSqlite3(await memoryImage(empty));
  await empty.close();
  const started = performance.now();
  const n = r.devices;
  const id = (i: number) => `veh-${String(i).padStart(7, '0')}`;
  sqlite
    .prepare(
      `INSERT INTO releases (id, name, version, version_key, type, hardware, size, sha256, manifest, signature,
         key_id, allow_downgrade, created_at) VALUES ('rel', 'fw', '2.0.0', '', 'firmware', '[]', 1, '', '{}', '', '', 0, 0)`,
    )
    .run();
  const device = sqlite.prepare(
    `INSERT INTO devices (id, name, tags, recorded_status, created_at, updated_at, firmware_version, timezone)
     VALUES (?, ?, '{}', 'unknown', 0, 0, '1.0.0', 'UTC')`,
  );
  const update = sqlite.prepare(
    `INSERT INTO device_updates (id, device_id, release_id, rollout_id, state, action, last_seq, attempts,
       created_at, updated_at, phase, purpose) VALUES (?, ?, 'rel', 'ro', 'pending', 'install', 0, 0, 0, 0, 0, 'update')`,
  );
  sqlite.transaction(() => {
    for (let i = 0; i < n; i++) {
      device.run(id(i), id(i));
      update.run(`upd_${String(i).padStart(7, '0')}`, id(i));
    }
  })();
  const beat = sqlite.prepare(`UPDATE devices SET last_seen = ?, recorded_status = 'online' WHERE id = ?`);
  const STATES = ['notified', 'downloading', 'installing', 'verifying', 'succeeded'];
  const report = sqlite.prepare(
    'UPDATE device_updates SET state = ?, last_seq = ?, updated_at = ? WHERE id = ?',
  );
  const event = sqlite.prepare(
    `INSERT INTO events (at, type, device_id, rollout_id, actor, reason, data) VALUES (?, 'update.x', ?, NULL, NULL, NULL, '{}')`,
  );
  const inBatches = (count: number, write: (k: number) => void) => {
    for (let from = 0; from < count; from += batch) {
      sqlite.transaction(() => {
        for (let k = from; k < Math.min(count, from + batch); k++) write(k);
      })();
    }
  };
  inBatches(r.run.heartbeats, (k) => beat.run(k, id(k % n)));
  inBatches(r.run.reports, (k) =>
    report.run(STATES[Math.floor(k / n) % STATES.length], k, k, `upd_${String(k % n).padStart(7, '0')}`),
  );
  inBatches(r.run.events, (k) => event.run(k, id(k % n)));
  const seconds = (performance.now() - started) / 1000;
  sqlite.close();
  return seconds;
}

const describe = (r: SimResult) =>
  `${fmtInt(r.run.device_days_per_second)} device-days/s (${r.run.wall_seconds} s, setup ${r.run.setup_seconds} s; ` +
  `peak RSS ${fmtInt(r.run.peak_rss_mb)} MB, ${fmtInt(r.run.rss_per_device_bytes)} B a device; ` +
  `${fmtInt(r.run.heartbeats)} heartbeats, ${fmtInt(r.run.reports)} reports, ${fmtInt(r.run.events)} events, ` +
  `${r.run.syncs} syncs every ${r.run.sync_every_seconds === null ? '—' : `${r.run.sync_every_seconds / 3600} h`}; ` +
  `checks ${r.pass ? 'pass' : 'FAIL'})`;

export async function runSimulator(): Promise<BenchResult> {
  const dir = tempDir('fleetd-bench-sim-');
  try {
    log('fleetd sim run: 100,000 vehicles over 7 days');
    const goal = await simulate(dir.path, 'goal', vehicles(scaled(100_000, 1_000), '7d', scaled(5_000, 50)));
    log(describe(goal));
    log('raw SQL floor: the same writes as bare statements');
    const floor = await rawFloor(goal);
    log(`${floor.toFixed(2)} s`);
    log('fleetd sim run: 1,000,000 vehicles over 1 day');
    const million = await simulate(
      dir.path,
      'million',
      vehicles(scaled(1_000_000, 1_000), '1d', scaled(20_000, 50)),
    );
    log(describe(million));
    log('10,000 POS terminals over a day, store layer then http layer');
    const store = await simulate(dir.path, 'pos', POS, 'store');
    const http = await simulate(dir.path, 'pos', POS, 'http');
    log(`store ${describe(store)}; http ${describe(http)}`);
    return {
      rows: [
        {
          name: 'simulator (100,000 devices × 7 days)',
          figure: `${goal.run.wall_seconds} s, ${fmtInt(goal.run.device_days_per_second)} device-days/s`,
          baseline: `raw SQL, the run's writes as bare statements: ${floor.toFixed(1)} s`,
          ratio: (goal.run.wall_seconds / floor).toFixed(2),
          target: `< ${GOAL_S} s, every check passes`,
          pass: goal.run.wall_seconds < GOAL_S && goal.pass,
        },
        {
          name: 'simulator (1,000,000 devices × 1 day)',
          figure: `${million.run.wall_seconds} s, peak RSS ${fmtInt(million.run.peak_rss_mb)} MB (${fmtInt(million.run.rss_per_device_bytes)} B a device)`,
          baseline: `100,000 devices × 7 days: ${fmtInt(goal.run.rss_per_device_bytes)} B a device`,
          ratio: (million.run.rss_per_device_bytes / goal.run.rss_per_device_bytes).toFixed(2),
          target: 'runs to the end, every check passes (information: time and memory)',
          pass: million.pass,
        },
        {
          name: 'simulator (layers, 10,000 devices × 1 day)',
          figure: `store layer ${store.run.wall_seconds} s (${fmtInt(store.run.device_days_per_second)} device-days/s)`,
          baseline: `http layer ${http.run.wall_seconds} s (${fmtInt(http.run.device_days_per_second)} device-days/s)`,
          ratio: (http.run.wall_seconds / store.run.wall_seconds).toFixed(2),
          target: 'information: what Fastify costs per device message; checks pass on both',
          pass: store.pass && http.pass,
        },
      ],
      details: [
        '`fleetd sim run` (child process, `--output json`, default settings: `sync_every: auto`, steps of 30 s, ' +
          'the database in memory). Wall time includes setup (server start, import of the fleet, credentials, release).',
        `- 100,000 vehicles (profile vehicle, four U.S. zones), 7 days, seed 000's progressive rollout at 14 h ` +
          `(canary 1 % 24 h 95 %, early 10 % 12 h 90 %, full 85 %; max_concurrent 5,000; 1 % failures): ${describe(goal)}`,
        `- Raw SQL floor (bench/simulator.ts, same schema in memory): ${fmtInt(goal.devices)} devices and update rows, ` +
          `then ${fmtInt(goal.run.heartbeats)} device-row updates, ${fmtInt(goal.run.reports)} update-row updates and ` +
          `${fmtInt(goal.run.events)} event inserts in transactions of 1,000: ${floor.toFixed(2)} s`,
        `- 1,000,000 vehicles, 1 day, the same rollout (max_concurrent 20,000): ${describe(million)}`,
        `- 10,000 POS terminals, 1 day, a 20:00–23:00 window: store layer ${describe(store)}; http layer (every ` +
          `heartbeat and report an HTTP request through Fastify's inject) ${describe(http)}`,
      ],
    };
  } finally {
    dir.remove();
  }
}
