/**
 * Event retention keeps the database flat: a simulated fleet over 90 days with events kept for 30, the SQLite
 * database's size after day 30 against its size at the end (goal: within ±10 %). Freed pages are reused by
 * later writes, so the file stops growing once the window is full; it never shrinks without VACUUM.
 *
 *   node dist/bench/retention.js [devices] [days]   (default 100,000 devices, 90 days)
 */
import { DAY_MS } from '../src/core/rollout/zone.js';
import { parseScenarioText } from '../src/sim/scenario.js';
import { Simulator } from '../src/sim/simulator.js';

const devices = Number(process.argv[2] ?? 100_000);
const days = Number(process.argv[3] ?? 90);
const KEEP_DAYS = 30;

// A release every 10 days to the whole fleet, so events keep coming all along (each update writes about five).
const rollouts = Array.from(
  { length: Math.ceil(days / 10) },
  (_, k) => `  - at: ${k * 10 * 24 + 1}h
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

const started = performance.now();
const outcome = await new Simulator(scenario, {
  retention: { maxAgeMs: KEEP_DAYS * DAY_MS, maxCount: null },
  progress: (line) => process.stderr.write(`${line}\n`),
}).run();
const sizes = outcome.stats.databaseBytes ?? [];
const mb = (b: number) => (b / 2 ** 20).toFixed(1);
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
