/**
 * Speed of `fleetd sim run` (a child process, as a user runs it) on a fixed scenario: 10,000 POS terminals
 * over one day with a windowed rollout, devices entering at the store layer (the default). Baseline: the
 * same scenario with every heartbeat and report sent as an HTTP request through Fastify (`--layer http`),
 * which is what real devices cost the server; the ratio says what the store layer saves.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SimResult } from '../src/sim/result.js';
import { type BenchResult, FLEETD, fmtInt, log, tempDir } from './support.js';

const DEVICES = 10_000;
const DAYS = 1;
const TIMEOUT_MS = 15 * 60_000;
/** The goal is a week of 100,000 devices in under a minute: 700,000 device-days in 60 s. */
const GOAL_DEVICE_DAYS_PER_S = (100_000 * 7) / 60;

const SCENARIO = `name: bench-simulator
start: 2026-03-02T00:00:00Z
duration: ${DAYS}d
seed: 11
fleet:
  - count: ${DEVICES}
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

function simulate(file: string, layer: 'store' | 'http'): Promise<SimResult> {
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
  return new Promise((resolve, reject) => {
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      // Exit code 1 means a check failed; the figures are still the run's.
      if (signal !== null || out.trim() === '') {
        reject(new Error(`sim run --layer ${layer}: ${signal ?? code}\n${err.slice(-2000)}`));
        return;
      }
      resolve(JSON.parse(out) as SimResult);
    });
  });
}

const describe = (r: SimResult) =>
  `${fmtInt(r.run.device_days_per_second)} device-days/s (${r.run.wall_seconds} s, setup ${r.run.setup_seconds} s; ` +
  `peak RSS ${r.run.peak_rss_mb} MB, ${fmtInt(r.run.rss_per_device_bytes)} B a device; ` +
  `${fmtInt(r.run.heartbeats)} heartbeats, ${fmtInt(r.run.reports)} reports; checks ${r.pass ? 'pass' : 'FAIL'})`;

export async function runSimulator(): Promise<BenchResult> {
  const dir = tempDir('fleetd-bench-sim-');
  try {
    const file = join(dir.path, 'scenario.yaml');
    writeFileSync(file, SCENARIO);
    log(`fleetd sim run: ${fmtInt(DEVICES)} devices over ${DAYS} day(s), store layer`);
    const store = await simulate(file, 'store');
    log(describe(store));
    log('the same scenario, http layer');
    const http = await simulate(file, 'http');
    log(describe(http));
    const rate = store.run.device_days_per_second;
    return {
      rows: [
        {
          name: 'simulator',
          figure: `${fmtInt(rate)} device-days/s, ${fmtInt(DEVICES)} devices × ${DAYS} day, store layer (${store.run.wall_seconds} s)`,
          baseline: `same scenario, http layer: ${fmtInt(http.run.device_days_per_second)} device-days/s (${http.run.wall_seconds} s)`,
          ratio: (rate / http.run.device_days_per_second).toFixed(2),
          target: `information; the goal (100,000 devices × 7 days < 60 s) needs ${fmtInt(GOAL_DEVICE_DAYS_PER_S)} device-days/s; checks pass`,
          pass: store.pass && http.pass,
        },
      ],
      details: [
        `\`fleetd sim run\` (child process, \`--output json\`) on a fixed scenario: ${fmtInt(DEVICES)} POS ` +
          `terminals (profile pos, two zones) over ${DAYS} day, a scheduled rollout at 1 h with a 20:00–23:00 window ` +
          'and max_concurrent 500, 2 % failures. Figure: the store layer (default: heartbeats through the ' +
          'group-commit batcher, reports through `store.updates.report`). Baseline: `--layer http`, every ' +
          'heartbeat and report an HTTP request through Fastify, as real devices send them: what the store ' +
          'layer leaves out. Ratio = store / http device-days per second (higher: the store layer is faster). ' +
          'Wall time includes setup (import, release upload).',
        `- store layer: ${describe(store)}`,
        `- http layer: ${describe(http)}`,
      ],
    };
  } finally {
    dir.remove();
  }
}
