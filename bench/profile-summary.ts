/**
 * Where a server's time goes, from a `--cpu-prof` profile (`BENCH_CPU_PROF=<dir> npm run bench -- heartbeat`):
 * the self time of the last N seconds (the measured phase, not start-up) summed by what the code is, and the
 * heaviest functions. BENCHMARKS.md quotes it for a target missed.
 *
 *   node dist/bench/profile-summary.js <file.cpuprofile> [seconds, default 10]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** What a frame is, by where its code lives: the buckets the reading notes speak of. */
function bucket(url: string, fn: string): string {
  if (url === '') return fn.startsWith('(') ? fn : `native: ${fn}`;
  if (/better-sqlite3|\/store\/sqlite\//.test(url)) return 'SQLite statements and commit';
  if (/\/store\/|kysely/.test(url)) return 'store (shared code, Kysely)';
  if (/secure-json-parse|content-type-parser/.test(url)) return 'JSON body parsing';
  if (/fast-json-stringify/.test(url)) return 'reply serialisation';
  if (/ajv|validate/.test(url)) return 'schema validation';
  if (/node_modules\/(fastify|find-my-way|avvio|light-my-request)/.test(url))
    return 'Fastify (routing, hooks, reply)';
  if (/pino/.test(url)) return 'logging';
  if (/crypto/.test(url)) return 'credential hashing';
  if (/^node:(_http|net|internal\/(streams|stream_base|http))/.test(url)) return 'node:http and sockets';
  if (url.startsWith('node:')) return 'other Node internals';
  return `FleetD: ${url.replace(/.*\/dist\/src\//, '').replace(/\.js$/, '')}`;
}

const [file, secondsArg] = process.argv.slice(2);
if (!file) throw new Error('usage: profile-summary <file.cpuprofile> [seconds]');
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const window = Number(secondsArg ?? 10) * 1e6;
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
let t = profile.startTime;
const times = profile.timeDeltas.map((d) => (t += d));
const from = times[times.length - 1]! - window;
const buckets = new Map<string, number>();
const functions = new Map<string, number>();
let total = 0;
profile.samples.forEach((id, i) => {
  if (times[i]! < from) return;
  const d = profile.timeDeltas[i]!;
  const { url, functionName, lineNumber } = nodes.get(id)!.callFrame;
  total += d;
  const b = bucket(url, functionName);
  buckets.set(b, (buckets.get(b) ?? 0) + d);
  const f = `${functionName || '(anonymous)'} ${url.replace(/.*\/(node_modules|dist)\//, '')}:${lineNumber + 1}`;
  functions.set(f, (functions.get(f) ?? 0) + d);
});
const share = (us: number) => `${((100 * us) / total).toFixed(1)} %`;
const top = (m: Map<string, number>, n: number) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, us]) => `  ${share(us).padStart(7)}  ${k}`);
console.log(
  `${(total / 1e6).toFixed(1)} s of samples (the last ${window / 1e6} s), self time by kind of code:`,
);
console.log(top(buckets, 14).join('\n'));
console.log('heaviest functions (self time):');
console.log(top(functions, 12).join('\n'));
