/** Shared by the benchmarks: child processes (servers), seeding through the Store API, numbers. */
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_THRESHOLDS, type DeviceRecord } from '../src/core/device.js';
import { mulberry32 } from '../src/core/random.js';
import { pick } from '../src/sim/random.js';
import type { SqlStore } from '../src/store/sql-store.js';

export const FLEETD = join(import.meta.dirname, '../src/cli/main.js');
export const BARE_SERVER = join(import.meta.dirname, 'bare-server.js');
export const FASTIFY_BASELINE = join(import.meta.dirname, 'fastify-baseline.js');
export const BARE_TLS_SERVER = join(import.meta.dirname, 'bare-tls-server.js');

/** One row of the summary table in BENCHMARKS.md. `name` starts with the benchmark's name. */
export interface BenchRow {
  name: string;
  figure: string;
  baseline: string;
  ratio: string;
  target: string;
  pass: boolean;
}

export interface BenchResult {
  rows: BenchRow[];
  /** Markdown lines for the benchmark's details section. */
  details: string[];
}

export const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);

/**
 * `BENCH_SCALE=<fraction>` (default 1) scales every benchmark's device counts, sizes and durations down, for a
 * quick check that the harness runs: `BENCH_SCALE=0.05 npm run bench`. A scaled run's figures are not the
 * targets' figures, so run.ts prints them and leaves BENCHMARKS.md alone.
 */
export const SCALE = (() => {
  const value = Number(process.env.BENCH_SCALE ?? 1);
  if (!(value > 0 && value <= 1))
    throw new Error(`BENCH_SCALE=${process.env.BENCH_SCALE}: a number in (0, 1]`);
  return value;
})();

/** `n` scaled by BENCH_SCALE, at least `min`. */
export const scaled = (n: number, min = 1) => Math.max(min, Math.round(n * SCALE));

export function tempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export function machine(): string {
  const cpu = cpus();
  return (
    `${cpu[0]?.model ?? 'unknown CPU'}, ${cpu.length} cores, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ` +
    `Node ${process.version}, ${process.platform}/${process.arch}`
  );
}

export interface Child {
  url: string;
  pid: number;
  /** CPU seconds (user + system) the child has used so far; undefined where /proc is not available. */
  cpuSeconds(): number | undefined;
  stop(): Promise<void>;
}

/** Spawns `node <args>` and resolves once it prints `listening on http://…` (or `https://…`) on stdout. */
export function spawnListening(label: string, args: string[], options: SpawnOptions = {}): Promise<Child> {
  const child: ChildProcess = spawn(process.execPath, args, {
    ...options,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let url: string | undefined;
  const forward = (chunk: Buffer) => {
    const text = chunk.toString();
    if (url) process.stderr.write(text.replace(/^(?=.)/gm, `[${label}] `));
    else output += text;
  };
  child.stderr!.on('data', forward);
  return new Promise((resolve, reject) => {
    child.once('exit', (code) =>
      reject(new Error(`${label} exited with ${code} before listening:\n${output}`)),
    );
    child.stdout!.on('data', (chunk: Buffer) => {
      forward(chunk);
      const match = url ? null : /listening on (https?:\/\/\S+)/.exec(output);
      if (!match) return;
      url = match[1]!;
      const pid = child.pid!;
      resolve({
        url,
        pid,
        cpuSeconds: () => procCpuSeconds(pid),
        stop: () =>
          new Promise((done) => {
            if (child.exitCode !== null || child.signalCode !== null) return done();
            const force = setTimeout(() => child.kill('SIGKILL'), 10_000);
            child.once('exit', () => {
              clearTimeout(force);
              done();
            });
            child.kill('SIGTERM');
          }),
      });
    });
  });
}

/**
 * The real server, as a user runs it. BENCH_CPU_PROF=<dir> profiles it (`node --cpu-prof`); the profile
 * is written when the server exits. It runs in its data folder, so nothing can land outside the temp dir.
 */
export function spawnFleetd(dataDir: string, extraArgs: string[] = []): Promise<Child> {
  const profile = process.env.BENCH_CPU_PROF
    ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF]
    : [];
  const args = [
    ...profile,
    FLEETD,
    'server',
    '--port',
    '0',
    '--data',
    dataDir,
    '--log-level',
    'warn',
    ...extraArgs,
  ];
  return spawnListening('fleetd', args, { cwd: dataDir });
}

function procCpuSeconds(pid: number): number | undefined {
  try {
    // Fields after the command name (which is in parentheses); utime and stime are the 12th and 13th.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100 on Linux
  } catch {
    return undefined;
  }
}

/** Registers `total` devices through Store.importDevices, in transactions of `chunk` devices. */
export async function seedDevices(
  store: SqlStore,
  total: number,
  record: (i: number) => DeviceRecord,
  now: number,
  chunk = 20_000,
): Promise<void> {
  const started = Date.now();
  for (let from = 0; from < total; from += chunk) {
    const records = Array.from({ length: Math.min(chunk, total - from) }, (_, k) => record(from + k));
    await store.importDevices(records, { now, thresholds: DEFAULT_THRESHOLDS }, 'bench');
    const done = from + records.length;
    if (done === total || (done / chunk) % 5 === 0) {
      log(
        `seeded ${fmtInt(done)}/${fmtInt(total)} devices (${((Date.now() - started) / 1000).toFixed(0)} s)`,
      );
    }
  }
}

/** A small deterministic PRNG, so every run seeds the same fleet. */
export const random: (seed: number) => () => number = mulberry32;

/** Picks from `[value, weight]` pairs with a uniform number in [0, 1) (the simulator's own picker). */
export const weighted = pick;

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

export const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');
export const fmtMs = (ms: number) => `${ms < 10 ? ms.toFixed(2) : ms.toFixed(1)} ms`;
