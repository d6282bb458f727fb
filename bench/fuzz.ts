/**
 * `npm run fuzz -- --cases 100000`: the long fuzz run. The same generators, server and checks as the CI suite
 * (test/fuzz.test.ts), spread evenly over every operation of the OpenAPI document and both databases, each
 * operation's share against a freshly seeded server. Prints a summary: cases, failures by route, property and
 * status, the slowest case and the longest /healthz wait.
 * Exits 1 when a failure no entry of KNOWN_FAILURES covers was found.
 *
 * Options: --cases N (default 10000), --db sqlite|postgres|both (default both), --seed N, --only TEXT (the
 * operations whose key contains it), --pg URL (default FLEETD_TEST_PG or postgres://postgres@127.0.0.1:5432/test).
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import pg from 'pg';
import { fuzzRequests } from '../test/support/fuzz-generators.js';
import { documentedOperations } from '../test/support/fuzz-operations.js';
import { type CaseFailure, runCase } from '../test/support/fuzz-run.js';
import { FuzzTarget } from '../test/support/fuzz-target.js';

const { values } = parseArgs({
  options: {
    cases: { type: 'string', default: '10000' },
    db: { type: 'string', default: 'both' },
    seed: { type: 'string' },
    only: { type: 'string' },
    pg: { type: 'string' },
  },
});
const CASES = Number(values.cases);
const SEED = values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed);
const PG = values.pg ?? (process.env.FLEETD_TEST_PG?.trim() || 'postgres://postgres@127.0.0.1:5432/test');
const DATABASES = values.db === 'both' ? ['sqlite', 'postgres'] : [values.db ?? 'sqlite'];

const log = (message: string) => process.stderr.write(`[fuzz] ${message}\n`);

/** A fresh PostgreSQL schema per server, all dropped at the end. */
const schemas: string[] = [];
async function onAdmin<T>(run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: PG });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}
async function freshDatabase(name: string): Promise<string | undefined> {
  if (name === 'sqlite') return undefined;
  const schema = `fleetd_fuzz_${randomBytes(6).toString('hex')}`;
  await onAdmin((c) => c.query(`create schema "${schema}"`));
  schemas.push(schema);
  const url = new URL(PG);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return url.toString();
}

interface Tally {
  cases: number;
  byStatus: Map<number, number>;
  failures: Map<string, { n: number; example: CaseFailure }>;
  slowest: { ms: number; what: string };
  healthz: { ms: number; what: string };
  over1s: number;
  healthzOver100ms: number;
  resets: number;
  setupErrors: string[];
}

const tally: Tally = {
  cases: 0,
  byStatus: new Map(),
  failures: new Map(),
  slowest: { ms: 0, what: '' },
  healthz: { ms: 0, what: '' },
  over1s: 0,
  healthzOver100ms: 0,
  resets: 0,
  setupErrors: [],
};

function record(database: string, failure: CaseFailure): void {
  const key = `${database} | ${failure.op} | ${failure.property} | ${failure.status}`;
  const entry = tally.failures.get(key);
  if (entry) entry.n++;
  else tally.failures.set(key, { n: 1, example: failure });
}

/** Errors nobody caught while a case ran (the CI suite has vitest for these). */
let stray: string[] = [];
process.on('unhandledRejection', (error) => stray.push(`unhandled rejection: ${String(error)}`));
process.on('uncaughtException', (error) => stray.push(`uncaught exception: ${error.stack ?? String(error)}`));

async function main(): Promise<number> {
  const operations = (await documentedOperations()).filter(
    (o) => !values.only || o.key.includes(values.only),
  );
  const share = Math.max(1, Math.round(CASES / (operations.length * DATABASES.length)));
  log(
    `seed ${SEED}: ${share} cases for each of ${operations.length} operations on ${DATABASES.join(' and ')}`,
  );
  const started = performance.now();
  // A run stopped before its end still reports what it did.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`stopped by ${signal} after ${tally.cases} of about ${CASES} cases`);
      process.exit(print(performance.now() - started));
    });
  }
  for (const database of DATABASES) {
    for (const [i, op] of operations.entries()) {
      // A server that cannot start (the shared database went away) costs its share, not the whole run.
      const target = await FuzzTarget.open(() => freshDatabase(database)).catch((error: unknown) => {
        tally.setupErrors.push(
          `${database} ${op.key}: ${error instanceof Error ? error.message : String(error)}`,
        );
        return undefined;
      });
      if (!target) continue;
      try {
        await fc.assert(
          fc.asyncProperty(fuzzRequests(op, target.hints, { raw: true }), async (request) => {
            stray = [];
            const result = await runCase(target, request);
            tally.cases++;
            tally.byStatus.set(result.status, (tally.byStatus.get(result.status) ?? 0) + 1);
            const what = `${database} ${op.key} [${request.label.slice(0, 160)}]`;
            if (result.ms > tally.slowest.ms) tally.slowest = { ms: result.ms, what };
            if (result.healthzMs > tally.healthz.ms) tally.healthz = { ms: result.healthzMs, what };
            if (result.ms > 1_000) tally.over1s++;
            if (result.healthzMs > 100) tally.healthzOver100ms++;
            for (const f of result.failures) record(database, f);
            for (const s of stray) {
              record(database, {
                op: op.key,
                property: 'crash',
                label: request.label,
                method: request.method,
                url: request.url.slice(0, 200),
                body: '',
                status: result.status,
                answer: s.slice(0, 300),
              });
            }
          }),
          { numRuns: share, seed: SEED + i },
        );
      } finally {
        tally.resets += target.resets;
        await target.close();
      }
      const failed = [...tally.failures.values()].reduce((n, f) => n + f.n, 0);
      log(
        `${database} ${op.key}: done (${tally.cases} cases, ${failed} failures, ${((performance.now() - started) / 1000).toFixed(0)} s)`,
      );
    }
  }
  await Promise.all(schemas.map((s) => onAdmin((c) => c.query(`drop schema if exists "${s}" cascade`))));
  return print(performance.now() - started);
}

function print(elapsedMs: number): number {
  const total = [...tally.failures.values()].reduce((n, f) => n + f.n, 0);
  const lines = [
    `# Fuzz run, seed ${SEED}`,
    '',
    `cases: ${tally.cases} in ${(elapsedMs / 1000).toFixed(0)} s (${(tally.cases / (elapsedMs / 1000)).toFixed(0)}/s), on ${DATABASES.join(' and ')}`,
    `answers by status: ${[...tally.byStatus]
      .sort((a, b) => a[0] - b[0])
      .map(([s, n]) => `${s}: ${n}`)
      .join(', ')}`,
    `failures: ${total}; servers reset after a poisoned state: ${tally.resets}`,
    `slowest case: ${tally.slowest.ms.toFixed(0)} ms, ${tally.slowest.what}; cases over 1 s: ${tally.over1s}`,
    `longest /healthz wait: ${tally.healthz.ms.toFixed(0)} ms, ${tally.healthz.what}; cases with a wait over 100 ms: ${tally.healthzOver100ms}`,
    ...tally.setupErrors.map((e) => `server did not start, share skipped: ${e}`),
    '',
    '## Failures by database, route, property and status',
    '',
    ...[...tally.failures.entries()]
      .sort((a, b) => (a[0] < b[0] ? -1 : 1))
      .map(
        ([key, f]) =>
          `- ${key}: ${f.n}; e.g. ${f.example.method} ${f.example.url} [${f.example.label}] body=${f.example.body.slice(0, 160)} → ${f.example.answer.slice(0, 200)}`,
      ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  return total > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    log(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exit(2);
  },
);
