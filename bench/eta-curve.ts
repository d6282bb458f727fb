/**
 * The ETA's error curve per connectivity profile: a progressive rollout over a simulated fleet (created a day
 * in, so the server has a day of history), its ETA band recorded every simulated hour, each point's error
 * against the actual finish. Prints a Markdown table per profile.
 *
 *   npx tsc -p tsconfig.build.json && node dist/bench/eta-curve.js [devices=1000] [days=5] [seeds=1]
 */
import { PROFILE_NAMES } from '../src/sim/profiles.js';
import { buildResult, type RolloutResult } from '../src/sim/result.js';
import { parseScenario } from '../src/sim/scenario.js';
import { Simulator } from '../src/sim/simulator.js';

const devices = Number(process.argv[2] ?? 1000);
const days = Number(process.argv[3] ?? 5);
const seeds = Number(process.argv[4] ?? 1);

function scenario(profile: string, seed: number) {
  return parseScenario({
    name: `eta-${profile}`,
    start: '2026-03-02T00:00:00Z',
    duration: `${days}d`,
    seed,
    simulation: { sync_every: '1h' },
    fleet: [
      {
        count: devices,
        id_prefix: 'dev-',
        profile,
        hardware_type: 'hw-1',
        firmware: { '1.0.0': 1 },
        timezones: { 'America/New_York': 0.35, 'America/Chicago': 0.3, 'America/Los_Angeles': 0.35 },
        install_seconds: { lognormal: { median: 900, sigma: 0.3 } },
        failure_rate: 0.01,
      },
    ],
    rollouts: [
      {
        at: '1d',
        spec: {
          name: 'rollout',
          release: 'fw@2.0.0',
          filter: '',
          strategy: 'progressive',
          max_concurrent: Math.max(10, Math.round(devices / 20)),
          phases: [
            { name: 'canary', percentage: 5, wait: '6h', success_rate: 90 },
            { name: 'full', percentage: 100, success_rate: 85 },
          ],
        },
      },
    ],
  });
}

const pct = (v: number | null) => (v === null ? '—' : `${v > 0 ? '+' : ''}${v.toFixed(1)} %`);

function curve(r: RolloutResult): string[] {
  const points = r.eta.filter((e) => e.when === 'hourly' && e.error_pct !== null && e.done_pct !== null);
  const rows: string[] = [];
  for (const mark of [0, 10, 25, 50, 75, 90]) {
    const e = points.find((p) => p.done_pct! >= mark);
    if (e)
      rows.push(
        `| ≥ ${mark} % done | ${e.at.slice(5, 16)} | ${e.source} | ${pct(e.error_pct)} | ${pct(e.p90_error_pct)} |`,
      );
  }
  const late = points.filter((p) => p.done_pct! >= 10);
  const worst = late.reduce((m, p) => Math.max(m, Math.abs(p.error_pct!)), 0);
  const covered = late.filter((p) => p.p90_error_pct! >= 0).length;
  rows.push(
    `| after 10 % done (${late.length} points) | | | worst ${worst.toFixed(1)} % | actual ≤ P90 at ${covered} of ${late.length} |`,
  );
  return rows;
}

for (const profile of PROFILE_NAMES.filter((p) => p !== 'custom')) {
  for (let seed = 0; seed < seeds; seed++) {
    const wall = performance.now();
    const result = buildResult(await new Simulator(scenario(profile, seed)).run());
    const r = result.rollouts[0]!;
    console.log(
      `\n${profile}, seed ${seed}: ${r.state}, finished ${r.finished_at ?? 'no'}; dry run P50 ${r.plan?.p50_at} P90 ${r.plan?.p90_at} (${r.plan?.source}), ${Math.round((performance.now() - wall) / 1000)} s`,
    );
    console.log('| point | at (UTC) | source | P50 error | P90 error |\n| --- | --- | --- | --- | --- |');
    for (const line of curve(r)) console.log(line);
  }
}
