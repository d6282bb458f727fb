/**
 * Event retention keeps the database flat: a simulated fleet over 90 days with events kept for 30, the SQLite
 * database's size after day 30 against its size at the end (goal: within ±10 %). Freed pages are reused by
 * later writes, so the file stops growing once the window is full; it never shrinks without VACUUM.
 *
 * Every 10 days it prints where the pages are (SQLite's dbstat: each table and index, free pages), the rows
 * of the tables that grow with time, and the events per rollout and type. The goal is checked twice: for the
 * whole file, and for what retention bounds (events, device_status_days and their indexes); the file also
 * holds what is not events, such as one device_updates row per device and release, which grows with every
 * release by design.
 *
 *   node dist/bench/retention.js [devices] [days]   (default 100,000 devices, 90 days)
 */
import { sql } from 'kysely';
import { DAY_MS } from '../src/core/rollout/zone.js';
import { parseScenarioText } from '../src/sim/scenario.js';
import { Simulator } from '../src/sim/simulator.js';
import { SqlStore } from '../src/store/sql-store.js';
import type { Store } from '../src/store/store.js';

const devices = Number(process.argv[2] ?? 100_000);
const days = Number(process.argv[3] ?? 90);
const KEEP_DAYS = 30;

// A release every 10 days to the whole fleet, so events keep coming all along (each update writes about five),
// and one more at the very end: once every rollout of a scenario exists and has ended, the simulator only
// keeps the devices of open rollouts in touch (simulator.ts, sync), so the fleet would fall quiet after the
// last release and the last days would write almost no status events.
const rollouts = Array.from(
  { length: Math.ceil(days / 10) + 1 },
  (_, k) => `  - at: ${Math.min(k * 10 * 24 + 1, days * 24)}h
    spec:
      name: pos-2.${k + 4}.0
      release: pos-fw@2.${k + 4}.0
      filter: ""
      strategy: immediate
      max_concurrent: 2000
`,
).join('');

const scenario = parseScenarioText(`name: retention-${devices}
start: 2026-03-02T00:00:00Z
duration: ${days}d
seed: 3
fleet:
  - count: ${devices}
    id_prefix: pos-
    profile: pos
    hardware_type: pos-x200
    firmware: { "2.3.0": 1 }
    timezones: { America/New_York: 0.5, America/Los_Angeles: 0.5 }
rollouts:
${rollouts}`);

const mb = (b: number) => (b / 2 ** 20).toFixed(1);
/** Tables whose size retention bounds: the events and the daily status summaries, with their indexes. */
const EVENT_TABLES = new Set(['events', 'device_status_days']);

interface Breakdown {
  day: number;
  fileBytes: number;
  freeBytes: number;
  eventBytes: number;
  /** Bytes in use per table, its indexes included. */
  tables: Map<string, number>;
  /** Bytes in use per b-tree (table or index). */
  trees: Array<{ name: string; table: string; bytes: number }>;
  rows: Record<string, number>;
  /** Events per rollout (none: device events without one), with the rollout's state. */
  byRollout: Array<{ name: string; state: string; events: number }>;
  byType: Array<{ type: string; events: number }>;
}
const breakdowns: Breakdown[] = [];

/** Pages in use per b-tree (SQLite's dbstat), free pages and row counts of the tables that grow with time. */
async function breakdown(day: number, store: Store): Promise<Breakdown> {
  if (!(store instanceof SqlStore) || store.dialect !== 'sqlite')
    throw new Error('the breakdown needs SQLite');
  const { db } = store;
  const trees = (
    await sql<{ name: string; table: string; bytes: number }>`
      select d.name as name, coalesce(m.tbl_name, d.name) as "table", sum(d.pgsize) as bytes
      from dbstat d left join sqlite_schema m on m.name = d.name group by d.name order by bytes desc`.execute(
      db,
    )
  ).rows.map((r) => ({ ...r, bytes: Number(r.bytes) }));
  const pragma = async (name: string) =>
    Number(Object.values((await sql.raw(`pragma ${name}`).execute(db)).rows[0] as object)[0]);
  const pageSize = await pragma('page_size');
  const fileBytes = (await pragma('page_count')) * pageSize;
  const freeBytes = (await pragma('freelist_count')) * pageSize;
  const tables = new Map<string, number>();
  for (const t of trees) tables.set(t.table, (tables.get(t.table) ?? 0) + t.bytes);
  const rows: Record<string, number> = {};
  for (const t of ['events', 'device_updates', 'device_status_days'])
    rows[t] = Number(
      (await sql<{ n: number }>`select count(*) as n from ${sql.table(t)}`.execute(db)).rows[0]!.n,
    );
  const byRollout = (
    await sql<{ name: string | null; state: string | null; events: number }>`
      select r.name as name, r.state as state, e.n as events
      from (select rollout_id, count(*) as n from events group by rollout_id) e
      left join rollouts r on r.id = e.rollout_id order by r.created_at`.execute(db)
  ).rows.map((r) => ({ name: r.name ?? '(none)', state: r.state ?? '-', events: Number(r.events) }));
  const byType = (
    await sql<{ type: string; events: number }>`
      select type, count(*) as events from events group by type order by events desc`.execute(db)
  ).rows.map((r) => ({ type: r.type, events: Number(r.events) }));
  let eventBytes = 0;
  for (const [t, b] of tables) if (EVENT_TABLES.has(t)) eventBytes += b;
  return { day, fileBytes, freeBytes, eventBytes, tables, trees, rows, byRollout, byType };
}

function print(b: Breakdown): void {
  const rows = Object.entries(b.rows)
    .map(([t, n]) => `${t} ${n}`)
    .join(', ');
  console.log(
    `day ${b.day}: file ${mb(b.fileBytes)} MB (free pages ${mb(b.freeBytes)} MB), events-related ${mb(b.eventBytes)} MB; rows: ${rows}`,
  );
  for (const t of b.trees.filter((x) => x.bytes >= 2 ** 20))
    console.log(`    ${t.name}${t.name === t.table ? '' : ` (${t.table})`}: ${mb(t.bytes)} MB`);
  console.log(
    `    events by rollout: ${b.byRollout.map((r) => `${r.name} ${r.state} ${r.events}`).join(', ')}`,
  );
  console.log(`    events by type: ${b.byType.map((r) => `${r.type} ${r.events}`).join(', ')}`);
}

const started = performance.now();
const outcome = await new Simulator(scenario, {
  retention: { maxAgeMs: KEEP_DAYS * DAY_MS, maxCount: null },
  progress: (line) => process.stderr.write(`${line}\n`),
  afterPrune: async (day, store) => {
    if (day % 10 !== 0 && day !== days) return;
    const b = await breakdown(day, store);
    breakdowns.push(b);
    print(b);
  },
}).run();
const sizes = outcome.stats.databaseBytes ?? [];
for (const s of sizes)
  if (process.env.ALL_DAYS || s.day % 10 === 0 || s.day === sizes.length)
    console.log(`day ${s.day}: ${mb(s.bytes)} MB`);
const atKeep = sizes.find((s) => s.day === KEEP_DAYS)?.bytes;
const last = sizes[sizes.length - 1]?.bytes;
if (atKeep !== undefined && last !== undefined) {
  const ratio = last / atKeep;
  console.log(
    `${devices} devices × ${days} days, events kept ${KEEP_DAYS} days: ${mb(atKeep)} MB after day ${KEEP_DAYS}, ` +
      `${mb(last)} MB at the end (×${ratio.toFixed(3)}, goal 0.9–1.1: ${Math.abs(ratio - 1) <= 0.1 ? 'met' : 'missed'}); ` +
      `${((performance.now() - started) / 1000).toFixed(0)} s`,
  );
}
// The goal is about events: the same ratio for the events, their indexes and the daily status summaries.
const keepB = breakdowns.find((b) => b.day === KEEP_DAYS);
const lastB = breakdowns[breakdowns.length - 1];
if (keepB && lastB && lastB !== keepB) {
  const ratio = lastB.eventBytes / keepB.eventBytes;
  console.log(
    `events-related (events, device_status_days and their indexes): ${mb(keepB.eventBytes)} MB after day ${KEEP_DAYS}, ` +
      `${mb(lastB.eventBytes)} MB at day ${lastB.day} (×${ratio.toFixed(3)}, goal 0.9–1.1: ${Math.abs(ratio - 1) <= 0.1 ? 'met' : 'missed'})`,
  );
  const names = new Set([...keepB.tables.keys(), ...lastB.tables.keys()]);
  for (const t of [...names]
    .filter((n) => (lastB.tables.get(n) ?? 0) >= 2 ** 16)
    .sort((a, z) => (lastB.tables.get(z) ?? 0) - (lastB.tables.get(a) ?? 0)))
    console.log(
      `    ${t}: ${mb(keepB.tables.get(t) ?? 0)} → ${mb(lastB.tables.get(t) ?? 0)} MB (indexes included)`,
    );
  console.log(`    free pages: ${mb(keepB.freeBytes)} → ${mb(lastB.freeBytes)} MB`);
}
