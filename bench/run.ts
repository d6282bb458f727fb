/**
 * `npm run bench [-- name…]`: runs the benchmarks (all, or those whose name starts with an argument),
 * prints a summary and rewrites BENCHMARKS.md, keeping the rows and details of benchmarks not run.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { runDelta } from './delta.js';
import { runDownload } from './download.js';
import { runFilterQuery } from './filter-query.js';
import { runHeartbeat } from './heartbeat.js';
import { runMetrics } from './metrics.js';
import { runMqttVsBroker } from './mqtt-vs-broker.js';
import { runReplicas } from './replicas.js';
import { runRolloutCreate } from './rollout-create.js';
import { runServerMemory } from './server-memory.js';
import { runSimulator } from './simulator.js';
import { type BenchResult, type BenchRow, log, machine, SCALE } from './support.js';
import { runTls } from './tls.js';

const BENCHMARKS: Record<string, () => Promise<BenchResult>> = {
  heartbeat: runHeartbeat,
  replicas: runReplicas,
  mqtt: runMqttVsBroker,
  'filter-query': runFilterQuery,
  download: runDownload,
  'rollout-create': runRolloutCreate,
  'server-memory': runServerMemory,
  simulator: runSimulator,
  tls: runTls,
  metrics: runMetrics,
  delta: runDelta,
};

const FILE = join(import.meta.dirname, '../../BENCHMARKS.md');
const HEADER = ['Benchmark', 'Figure', 'Baseline (same run)', 'Ratio', 'Target', 'Result', 'Measured'];

const benchOf = (text: string) => text.trim().split(/\s/)[0] ?? '';
const tableRow = (cells: string[]) => `| ${cells.join(' | ')} |`;

/** Table rows and details sections of the existing file, for the benchmarks not run this time. */
function previous(ran: Set<string>): { rows: string[]; details: string[] } {
  if (!existsSync(FILE)) return { rows: [], details: [] };
  const text = readFileSync(FILE, 'utf8');
  const rows = text
    .split('\n')
    .filter((line) => /^\| \S/.test(line) && !line.startsWith(`| ${HEADER[0]} `) && !line.startsWith('| ---'))
    .filter((line) => !ran.has(benchOf(line.slice(2))));
  const detailText = text.split(/^## Details\s*$/m)[1] ?? '';
  const details = detailText
    .split(/^(?=### )/m)
    .filter((section) => section.startsWith('### ') && !ran.has(benchOf(section.slice(4))))
    .map((section) => section.trimEnd());
  return { rows, details };
}

function render(results: Map<string, BenchResult>, date: string, command: string): string {
  const kept = previous(new Set(results.keys()));
  const rows = [...results.values()].flatMap((r) =>
    r.rows.map((row: BenchRow) =>
      tableRow([
        row.name,
        row.figure,
        row.baseline,
        row.ratio,
        row.target,
        row.pass ? 'pass' : '**FAIL**',
        date,
      ]),
    ),
  );
  const order = (line: string) => Object.keys(BENCHMARKS).indexOf(benchOf(line.replace(/^(\| |### )/, '')));
  const sections = [...results].map(([name, r]) => [`### ${name} (${date})`, '', ...r.details].join('\n'));
  return [
    '# Benchmarks',
    '',
    'Written by `bench/run.ts`; rows of benchmarks not run by the latest command are kept from earlier runs.',
    '',
    tableRow(HEADER),
    tableRow(HEADER.map(() => '---')),
    ...[...kept.rows, ...rows].sort((a, b) => order(a) - order(b)),
    '',
    '## Reading the targets',
    '',
    "Where a target is missed, the note says where the time goes. A CPU profile of a server's measured phase:",
    '`BENCH_CPU_PROF=DIR node dist/bench/run.js heartbeat`, then `node dist/bench/profile-summary.js DIR/FILE 10`.',
    '',
    '- **heartbeat** (missed on 2026-12-05: 0.39, goal 0.6): the issue asks for 0.6 of a bare `node:http` server that does',
    '  nothing. A Fastify app that does nothing either (same route, same body schema, no storage) reached 0.55 to',
    '  1.0 of it on this machine from one run to another (0.69 on 2026-12-05): the framework alone takes most of the',
    "  margin. The second heartbeat row shows FleetD's own work (authentication, validation, the durable",
    '  group-commit write) against that app. Profile of the measured phase: the SQLite transaction about 37 % of',
    "  the server's time (BEGIN and COMMIT 24 %, reading the batch's rows 7 %, the update 5 %), socket writes",
    '  14–15 %, JSON body parsing 8 %, Fastify routing and hooks 5 %, credential hashing 1 %, validation under',
    '  1 %. Checkpoints already run in a worker thread and the WAL is synchronous=normal. p99 stays under 20 ms,',
    '  and every acknowledged heartbeat is verified in the store afterwards.',
    '- **replicas** (missed on 2026-12-05: about 2,900 req/s, goal 8,000): heartbeat ingest on PostgreSQL with 100,000 devices',
    '  against an absolute target; the 2-replica row is set against 1 replica in the same run. A heartbeat batch',
    '  on PostgreSQL is four round trips whatever its size (BEGIN, one locking read, one write of rows and events,',
    '  COMMIT: src/store/postgres/heartbeats.ts), so with 48 clients the rate is about 48 divided by the time of one',
    '  batch. Batches of 6 to 16 heartbeats took 21 to 40 ms while one replica used 67 % of a core: the servers',
    '  wait for PostgreSQL, which shares the 2 cores with them and with autocannon, so a second and third replica',
    '  add nothing. The rollout is created over 1,000,000 devices (the fleet grows after the heartbeat runs); at',
    '  100,000 devices it took 5.8 s, 4.7 s of them inserting device_updates rows through their indexes and',
    '  0.16 s superseding.',
    '- **download** (missed directly: 0.39 on 2026-12-05, 0.73 on 2026-11-29; met behind nginx: 0.99):',
    '  FleetD sending the bytes itself reads the file into buffers and writes them to each socket through',
    "  Node's event loop, one core for 100 downloads; nginx hands the file to the kernel with `sendfile`. With",
    '  `--artifact-offload`, FleetD authorises each device and nginx in front sends the file',
    '  (docs/serving-artifacts.md): that is the configuration the throughput target is met in, and the one',
    '  recommended above 1,000 devices (the copy through Node is CPU taken from heartbeat ingest).',
    '- **filter-query** (count missed on 2026-12-05: p95 248 ms, goal 200 ms; 185 ms on 2026-11-29): the',
    "  hand-written SQL took as long (p95 241 ms), so the time is SQLite's, on a slower day of this shared machine. The index",
    '  the benchmark proposes brings the count to 130 ms, but it holds `last_seen`, which every heartbeat',
    '  rewrites: it is left out while heartbeat ingest misses its own target.',
    '- **rollout-create** (missed on 2026-12-05: 9.54 s, goal 7 s): the baseline writes the rows alone, in one',
    '  `INSERT … SELECT` with random ids, through every index and the counting trigger of device_updates, and is',
    '  slower than FleetD. The service also reads every device (busy, or with an update waiting) and plans, in the',
    '  same transaction: the dry run, that reading and planning alone, took 4.04 s; the rest is the rows going',
    "  through device_updates' indexes and trigger. On SQLite the devices are read once by a native query and the",
    '  rows go in 10,000 to a statement, grouped by state and phase and by device within a group, with ids that',
    '  sort in the order they are made, so every index takes its new keys at one end',
    '  (src/store/sqlite/rollouts.ts). Only devices with an update waiting are checked for one to supersede.',
    "- **simulator**: the goal row is seed 000's vehicle rollout at 100,000 devices over 7 days against the",
    '  floor under it: the same count of device, update and event rows, heartbeat and report writes done by bare',
    '  prepared statements on the same schema in memory (no server, no engine, no devices). The ratio is what',
    '  FleetD and the simulated devices add to the writes themselves. Wall times on this machine vary by ±20 %',
    '  from one run to the next (other tenants): compare figures within one run.',
    "- **mqtt**: FleetD's heartbeats (question and reply through the broker, a durable write between) against",
    '  the messages Mosquitto delivers to one `mosquitto_sub`. The 200 simulated devices (mqtt.js) share the',
    '  process and its CPU with the server, while the baseline uses separate processes: the figure is a floor.',
    "- **tls**: the first row is FleetD's heartbeat over mutual TLS (each device its own certificate, its",
    '  connection closed and opened again every 100 requests, resuming its TLS session) against the same server',
    '  and load over plain HTTP with bearer credentials. autocannon cannot give each connection its own',
    '  certificate, so the load comes from node:https in the bench process (bench/tls-load.ts), which shares the',
    '  2 cores with the server and pays for TLS on its side too. The second row is the same load against bare',
    '  node:https and node:http servers that only answer: what TLS costs Node itself per request, a fixed cost',
    "  that weighs most where the rest is least (so its ratio is lower than FleetD's, not a ceiling). In the",
    "  server's profile, reading the client certificate of every request (`TLSSocket.getPeerCertificate`, which",
    '  builds the whole certificate as an object) stood out: about a fifth of its busy time in a scaled-down run.',
    '  The handshake rows: every device connects at once, 500 in flight, first with full handshakes (certificates',
    '  checked both ways), then resuming the sessions the first round left, against a bare node:https server',
    "  with the same certificate; the issue sets no figure for them: the 0.5 bound is this file's, so that a",
    '  slide is noticed. Figures on this shared machine move by a factor of two from one run to another: compare',
    '  within one run.',
    '- **server-memory**: the issue sets no figure; the bound (200 MB over idle for 100,000 devices, 2 KB a',
    "  device) is this file's, so that growth is noticed.",
    '',
    '## Latest run',
    '',
    `- Machine: ${machine()}`,
    `- Date: ${date}`,
    `- Command: \`${command}\` (a subset: \`npm run bench -- heartbeat\`, \`npm run bench -- filter\`, \`npm run bench -- rollout-create\`)`,
    '',
    '## Details',
    '',
    [...kept.details, ...sections].sort((a, b) => order(a) - order(b)).join('\n\n'),
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const names = Object.keys(BENCHMARKS).filter((n) => args.length === 0 || args.some((a) => n.startsWith(a)));
  const unknown = args.filter((a) => !Object.keys(BENCHMARKS).some((n) => n.startsWith(a)));
  if (unknown.length > 0 || names.length === 0) {
    throw new Error(`unknown benchmark ${unknown.join(', ')}; known: ${Object.keys(BENCHMARKS).join(', ')}`);
  }
  log(`machine: ${machine()}`);
  const results = new Map<string, BenchResult>();
  for (const name of names) {
    // Other work on the machine skews the figures: say how busy it was.
    const load = loadavg()[0]!.toFixed(2);
    log(`── ${name} (load average ${load})`);
    // One benchmark that cannot run (nginx missing, say) must not cost the figures of the others.
    const result = await BENCHMARKS[name]!().catch(
      (error: Error): BenchResult => ({
        rows: [
          {
            name,
            figure: 'did not run',
            baseline: '—',
            ratio: '—',
            target: error.message.split('\n')[0]!,
            pass: false,
          },
        ],
        details: [`- did not run: ${error.message}`],
      }),
    );
    result.details.push(`- Machine: ${machine()}; 1-minute load average when the benchmark started: ${load}`);
    results.set(name, result);
  }
  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const command = `npm run build && npm run bench${args.length > 0 ? ` -- ${args.join(' ')}` : ''}`;
  // A scaled-down run checks the harness; its figures are not the targets' figures.
  if (SCALE === 1) writeFileSync(FILE, render(results, date, command));

  console.log('\nSummary');
  for (const [name, result] of results) {
    for (const row of result.rows) {
      console.log(
        `  ${row.pass ? 'pass' : 'FAIL'}  ${row.name}: ${row.figure} | baseline ${row.baseline} | ratio ${row.ratio} | target ${row.target}`,
      );
    }
    for (const line of result.details) console.log(`    ${name}: ${line}`);
  }
  console.log(SCALE === 1 ? `\nWrote ${FILE}` : `\nBENCH_SCALE=${SCALE}: ${FILE} left as it was`);
  process.exitCode = [...results.values()].every((r) => r.rows.every((row) => row.pass)) ? 0 : 1;
}

await main();
