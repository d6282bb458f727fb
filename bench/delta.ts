/**
 * Delta updates: bytes sent and time to build and apply a delta against the full image, per tool, on two payloads
 * made in the run: a root-filesystem-like tar of Debian's files from /usr with a few files changed as a package
 * upgrade changes them, and an application tarball (.tar.gz, what FleetD's `archive` type takes) with a few
 * changed files. Each delta is applied and compared with the target byte for byte; `zstd -19` on the full image
 * shows what compression alone would save. Bounded: about 48 MB of /usr at BENCH_SCALE=1.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  appendFileSync,
  cpSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { applyCommand, buildCommand, DELTA_TOOLS, type DeltaTool } from '../src/core/delta.js';
import { type BenchResult, type BenchRow, log, SCALE, tempDir } from './support.js';

interface Payload {
  name: string;
  source: string;
  target: string;
  what: string;
}

interface Measured {
  tool: DeltaTool;
  size: number;
  buildMs: number;
  applyMs: number;
  identical: boolean;
}

/** Files under `dir`, sorted, until `budget` bytes: a stable sample of what a Debian system holds. */
function sample(dir: string, budget: number): string[] {
  const out: string[] = [];
  let total = 0;
  const walk = (d: string) => {
    let entries: string[];
    try {
      entries = readdirSync(d).sort();
    } catch {
      return;
    }
    for (const e of entries) {
      if (total >= budget) return;
      const p = join(d, e);
      const s = statSync(p, { throwIfNoEntry: false });
      if (!s) continue;
      if (s.isDirectory()) walk(p);
      else if (s.isFile()) {
        out.push(p);
        total += s.size;
      }
    }
  };
  walk(dir);
  return out;
}

function copyTree(files: string[], from: string, to: string): string[] {
  return files.map((f) => {
    const dest = join(to, relative(from, f));
    mkdirSync(join(dest, '..'), { recursive: true });
    cpSync(f, dest);
    return dest;
  });
}

/** A package upgrade: some files of one package rewritten in part and grown (the caller adds a new file). */
function upgradeFiles(files: string[], count: number): void {
  const step = Math.max(1, Math.floor(files.length / count));
  for (let i = 0; i < files.length && i / step < count; i += step) {
    const f = files[i]!;
    const bytes = readFileSync(f);
    // New code is new bytes: a random run (up to 4 KiB) in the middle, as a rebuilt binary differs.
    randomBytes(Math.min(4096, bytes.length >> 1)).copy(bytes, bytes.length >> 2);
    writeFileSync(f, bytes);
    appendFileSync(f, `\n# upgraded to 2.0.${i}\n`);
  }
}

const tar = (dir: string, out: string, gzip = false) =>
  execFileSync('tar', [
    ...['--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner'],
    gzip ? '-czf' : '-cf',
    out,
    '-C',
    dir,
    '.',
  ]);

function makePayloads(work: string): Payload[] {
  const budget = Math.round(48 * 1024 * 1024 * SCALE);
  const rootOld = join(work, 'rootfs-old');
  const rootNew = join(work, 'rootfs-new');
  const files = sample('/usr/lib', budget);
  copyTree(files, '/usr/lib', rootOld);
  cpSync(rootOld, rootNew, { recursive: true });
  const copied = files.map((f) => join(rootNew, relative('/usr/lib', f)));
  upgradeFiles(copied.slice(Math.floor(copied.length / 3), Math.floor(copied.length / 3) + 60), 12);
  writeFileSync(join(rootNew, 'new-file-of-the-upgrade.conf'), 'setting = 2\n'.repeat(100));
  tar(rootOld, join(work, 'rootfs-1.tar'));
  tar(rootNew, join(work, 'rootfs-2.tar'));

  const appOld = join(work, 'app-old');
  const appNew = join(work, 'app-new');
  const appFiles = sample(
    join(import.meta.dirname, '../../node_modules/fastify'),
    Math.round(8 * 1024 * 1024 * SCALE),
  );
  copyTree(appFiles, join(import.meta.dirname, '../../node_modules'), appOld);
  cpSync(appOld, appNew, { recursive: true });
  const appCopied = appFiles.map((f) =>
    join(appNew, relative(join(import.meta.dirname, '../../node_modules'), f)),
  );
  upgradeFiles(
    appCopied.filter((f) => f.endsWith('.js')),
    5,
  );
  tar(appOld, join(work, 'app-1.tar.gz'), true);
  tar(appNew, join(work, 'app-2.tar.gz'), true);
  return [
    {
      name: 'rootfs',
      source: join(work, 'rootfs-1.tar'),
      target: join(work, 'rootfs-2.tar'),
      what: `tar of ${files.length} files from /usr/lib, 12 files changed and 1 added`,
    },
    {
      name: 'app',
      source: join(work, 'app-1.tar.gz'),
      target: join(work, 'app-2.tar.gz'),
      what: `.tar.gz of ${appFiles.length} files of an application, 5 files changed`,
    },
  ];
}

function timed(command: string, args: string[]): number {
  const t0 = performance.now();
  execFileSync(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  return performance.now() - t0;
}

function measure(p: Payload, tool: DeltaTool, work: string): Measured {
  const delta = join(work, `${p.name}.${tool}.delta`);
  const rebuilt = join(work, `${p.name}.${tool}.out`);
  const b = buildCommand(tool, { source: p.source, input: p.target, output: delta });
  const buildMs = timed(b.command, b.args);
  const a = applyCommand(tool, { source: p.source, input: delta, output: rebuilt });
  const applyMs = timed(a.command, a.args);
  return {
    tool,
    size: statSync(delta).size,
    buildMs,
    applyMs,
    identical: readFileSync(rebuilt).equals(readFileSync(p.target)),
  };
}

const kib = (n: number) =>
  n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(2)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

export async function runDelta(): Promise<BenchResult> {
  const work = tempDir('fleetd-bench-delta-');
  try {
    log('delta: making the payloads');
    const payloads = makePayloads(work.path);
    const rows: BenchRow[] = [];
    const details: string[] = [
      'Each delta is built and applied with the command FleetD runs (src/core/delta.ts), on files on disk;',
      "the full download is the target image's size, and `zstd -19` of it what compression alone would send.",
      'Times are wall-clock on a machine shared with other work at the time (2 cores), so they vary from run to run.',
      '',
    ];
    for (const p of payloads) {
      const full = statSync(p.target).size;
      const zstdFull = join(work.path, `${p.name}.full.zst`);
      const zstdMs = timed('zstd', ['-q', '-f', '-19', p.target, '-o', zstdFull]);
      const compressed = statSync(zstdFull).size;
      details.push(
        `- **${p.name}**: ${p.what}; full image ${kib(full)}, zstd -19 of it ${kib(compressed)} (${sec(zstdMs)}).`,
      );
      for (const tool of DELTA_TOOLS) {
        log(`delta: ${p.name} with ${tool}`);
        const m = measure(p, tool, work.path);
        rows.push({
          name: `delta (${p.name}, ${tool})`,
          figure: `${kib(m.size)} sent; build ${sec(m.buildMs)}, apply ${sec(m.applyMs)}`,
          baseline: `full download ${kib(full)}; zstd -19 alone ${kib(compressed)}`,
          ratio: (m.size / full).toFixed(4),
          target:
            'information: the tool is chosen by these sizes and the device memory each holds; applied image identical',
          pass: m.identical,
        });
        details.push(
          `  - ${tool}: delta ${kib(m.size)} (${((100 * m.size) / full).toFixed(2)} % of the full image, ` +
            `${((100 * m.size) / compressed).toFixed(1)} % of zstd -19), build ${sec(m.buildMs)}, apply ${sec(m.applyMs)}, ` +
            `rebuilt image ${m.identical ? 'identical' : 'DIFFERENT'}.`,
        );
      }
    }
    return { rows, details };
  } finally {
    work.remove();
  }
}
