/**
 * Every operation of the OpenAPI document, fuzzed on each database: valid-ish, mutated, hostile and raw-socket
 * requests (test/support/fuzz-generators.ts). For every case: no answer ≥ 500, no crash, every error answer is
 * `{"error":{"code","message"}}`, /healthz answers meanwhile, and afterwards the rollout list, a heartbeat, a
 * dry run and an engine pass still work. Timings are recorded and printed, never asserted (`npm run fuzz`
 * reports them). FUZZ_RUNS sets the cases per operation (default 25 on both databases: with 163 operations, 40
 * took 21 min of CI, the longest file of `npm test`; `npm run fuzz` is the long run), FUZZ_SEED replays a run, FUZZ_ONLY
 * keeps the operations whose key contains it, FUZZ_TRACE names a file each case is appended to.
 */
import fc from 'fast-check';
import { afterAll, expect, it } from 'vitest';
import { fuzzRequests } from './support/fuzz-generators.js';
import { documentedOperations } from './support/fuzz-operations.js';
import { type CaseFailure, runCase } from './support/fuzz-run.js';
import { FuzzTarget } from './support/fuzz-target.js';
import { forEachDatabase } from './support/stores.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 25);
const SEED = process.env.FUZZ_SEED === undefined ? Date.now() % 2 ** 31 : Number(process.env.FUZZ_SEED);

const ONLY = process.env.FUZZ_ONLY;
const operations = (await documentedOperations()).filter((o) => !ONLY || o.key.includes(ONLY));

const slowest = { ms: 0, what: '' };
const healthz = { ms: 0, what: '' };

afterAll(() => {
  const lines = [
    `fuzz: seed ${SEED}, ${RUNS} cases per operation`,
    `slowest case ${slowest.ms.toFixed(0)} ms (${slowest.what}); longest /healthz wait ${healthz.ms.toFixed(0)} ms (${healthz.what})`,
  ];
  console.log(lines.join('\n'));
});

/** One line per distinct failure (by property, status and kind of case), with a count and an example. */
function summarize(failures: CaseFailure[]): string[] {
  const groups = new Map<string, { n: number; example: CaseFailure }>();
  for (const f of failures) {
    const key = `${f.property} ${f.status} ${f.label.split(/[:=]/)[0]}`;
    const g = groups.get(key);
    if (g) g.n++;
    else groups.set(key, { n: 1, example: f });
  }
  return [...groups.entries()].map(
    ([key, { n, example: e }]) =>
      `${key} ×${n}: ${e.method} ${e.url} [${e.label}] body=${e.body.slice(0, 120)} → ${e.answer}`,
  );
}

forEachDatabase((database) => {
  it('the document lists every route (the fuzz walks it)', () => {
    expect(operations.length).toBeGreaterThanOrEqual(ONLY ? 1 : 36);
  });

  for (const op of operations) {
    it(`${op.key}: ${RUNS} fuzz cases answer below 500, in FleetD's error shape, and poison nothing`, async () => {
      const target = await FuzzTarget.open(() => database.fresh());
      const failures: CaseFailure[] = [];
      try {
        await fc.assert(
          fc.asyncProperty(fuzzRequests(op, target.hints, { raw: true }), async (request) => {
            const result = await runCase(target, request);
            if (result.ms > slowest.ms)
              Object.assign(slowest, { ms: result.ms, what: `${op.key} ${request.label}` });
            if (result.healthzMs > healthz.ms)
              Object.assign(healthz, { ms: result.healthzMs, what: `${op.key} ${request.label}` });
            failures.push(...result.failures);
          }),
          { numRuns: RUNS, seed: SEED + operations.indexOf(op) },
        );
      } finally {
        await target.close();
      }
      expect(summarize(failures)).toEqual([]);
    }, 180_000);
  }
});
