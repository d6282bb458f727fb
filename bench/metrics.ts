/**
 * GET /metrics on a large SQLite fleet (the filter-query fleet: statuses, firmware, hardware and tags), timed
 * in-process through the server's own composition root and app.inject, against the baseline of the same
 * aggregates written by hand in SQL (better-sqlite3 on the same file). Two figures: a scrape that reads the
 * fleet (cache missed: what one scrape per cache period costs) and a scrape served from the cache.
 *
 * 100,000 devices by default; `BENCH_DEVICES=1000000` for the 1M figure (seeding takes minutes).
 * Run alone: `node dist/bench/metrics.js` after `npm run build`.
 */
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { ManualClock } from '../src/core/clock.js';
import { DEFAULT_THRESHOLDS } from '../src/core/device.js';
import { hashSecret, newSecret } from '../src/registry/credentials.js';
import { createServer } from '../src/server/serve.js';
import { openSqliteStore } from '../src/store/sqlite/connect.js';
import { fleet } from './filter-query.js';
import { type BenchResult, fmtInt, fmtMs, log, percentile, scaled, seedDevices, tempDir } from './support.js';

const DEVICES = scaled(Number(process.env.BENCH_DEVICES ?? 100_000), 1_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 10);
const WARMUP_RUNS = 2;
const TARGET_MS = 250;

/** What fleet stats asks, by hand: counts by status, by firmware and by hardware type. */
const RAW_QUERIES = [
  `SELECT count(*) AS total,
     sum(CASE WHEN decommissioned_at IS NOT NULL THEN 1 ELSE 0 END) AS decommissioned,
     sum(CASE WHEN decommissioned_at IS NULL AND last_seen IS NULL THEN 1 ELSE 0 END) AS unknown,
     sum(CASE WHEN decommissioned_at IS NULL AND last_seen >= @onlineSince THEN 1 ELSE 0 END) AS online,
     sum(CASE WHEN decommissioned_at IS NULL AND last_seen < @abandonedBefore THEN 1 ELSE 0 END) AS abandoned
   FROM devices`,
  'SELECT firmware_version, count(*) AS n FROM devices WHERE decommissioned_at IS NULL GROUP BY firmware_version',
  'SELECT hardware_type, count(*) AS n FROM devices WHERE decommissioned_at IS NULL GROUP BY hardware_type',
];

async function time(run: () => unknown): Promise<{ median: number; p95: number }> {
  const samples: number[] = [];
  for (let i = 0; i < WARMUP_RUNS + RUNS; i++) {
    const start = performance.now();
    await run();
    if (i >= WARMUP_RUNS) samples.push(performance.now() - start);
  }
  return { median: percentile(samples, 50), p95: percentile(samples, 95) };
}

const describe = (t: { median: number; p95: number }) => `median ${fmtMs(t.median)}, p95 ${fmtMs(t.p95)}`;

export async function runMetrics(): Promise<BenchResult> {
  const dir = tempDir('fleetd-bench-metrics-');
  try {
    const file = join(dir.path, 'fleetd.db');
    const now = Date.now();
    const store = await openSqliteStore(file);
    log(`seeding ${fmtInt(DEVICES)} devices through Store.importDevices`);
    await seedDevices(store, DEVICES, fleet(now), now);
    const token = newSecret('admin');
    await store.createApiToken(
      { id: 'tok_bench', name: 'admin', role: 'admin', createdAt: now },
      hashSecret(token),
    );
    const clock = new ManualClock(now);
    // Cache time 0: every scrape reads the fleet, the cost a scrape pays once per cache period.
    const server = await createServer({
      dataDir: dir.path,
      store,
      clock,
      logLevel: 'silent',
      metricsCacheMs: 0,
    });
    const scrape = async () => {
      const r = await server.app.inject({
        method: 'GET',
        url: '/metrics',
        headers: { authorization: `Bearer ${token}` },
      });
      if (r.statusCode !== 200) throw new Error(`GET /metrics: ${r.statusCode} ${r.body}`);
      return r.body.length;
    };
    log(`timing GET /metrics, cache missed: ${WARMUP_RUNS} warm-up + ${RUNS} runs`);
    const cold = await time(scrape);
    await server.app.close();
    const cached = await createServer({ dataDir: dir.path, store, clock, logLevel: 'silent' });
    const scrapeCached = () =>
      cached.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${token}` } });
    log('timing GET /metrics from the cache');
    const warm = await time(scrapeCached);
    await cached.app.close();
    await store.close();

    log('timing the raw SQL counts (better-sqlite3 on the same file)');
    const raw = new BetterSqlite3(file, { readonly: true });
    const statements = RAW_QUERIES.map((q) => raw.prepare(q));
    const parameters = {
      onlineSince: now - DEFAULT_THRESHOLDS.offlineAfterMs,
      abandonedBefore: now - DEFAULT_THRESHOLDS.abandonedAfterMs,
    };
    const baseline = await time(() => {
      statements[0]!.get(parameters);
      statements[1]!.all();
      statements[2]!.all();
    });
    raw.close();

    const ratio = (cold.median / baseline.median).toFixed(2);
    const scale = DEVICES === 1_000_000 ? '' : ` (${fmtInt(DEVICES)} devices, not 1,000,000)`;
    log(`/metrics cache missed ${describe(cold)}; cached ${describe(warm)}; raw SQL ${describe(baseline)}`);
    return {
      rows: [
        {
          name: `metrics${scale}`,
          figure: `cache missed p95 ${fmtMs(cold.p95)}; cached p95 ${fmtMs(warm.p95)}`,
          baseline: `raw SQL counts p95 ${fmtMs(baseline.p95)}`,
          ratio: `${ratio}× (medians, cache missed)`,
          target: `< ${TARGET_MS} ms at 1,000,000 devices`,
          pass: DEVICES === 1_000_000 && cold.p95 < TARGET_MS,
        },
      ],
      details: [
        `GET /metrics over ${fmtInt(DEVICES)} SQLite devices, in-process (app.inject), ${RUNS} runs after ` +
          `${WARMUP_RUNS} warm-up: cache missed ${describe(cold)}, from the cache ${describe(warm)}. Baseline: ` +
          `the same counts by status, firmware and hardware in hand-written SQL on the same file, ${describe(baseline)}.`,
      ],
    };
  } finally {
    dir.remove();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await runMetrics();
  console.log(JSON.stringify(result, null, 2));
}
