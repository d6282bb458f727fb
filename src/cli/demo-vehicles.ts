/**
 * `fleetd demo vehicles`: seed 000's flow on a simulated fleet — 10,000 vehicles in four U.S. time zones,
 * a progressive rollout canary 1 % (24 h, 95 %) → early 10 % (12 h, 90 %) → full (85 %), online vehicles
 * updated now and offline ones as they connect over 7 days — ending with the update delivery flow.
 */
import type { Command } from 'commander';
import type { StateCounts } from '../core/rollout/counts.js';
import type { SimResult } from '../sim/result.js';
import { parseScenario } from '../sim/scenario.js';
import { CliError } from './client.js';
import { type OutputFormat, printJson } from './output.js';
import { simulate } from './sim.js';

export function vehiclesScenario(count: number, seed: number) {
  return parseScenario(
    {
      name: 'demo-vehicles',
      start: '2026-03-02T00:00:00Z',
      duration: '7d',
      seed,
      simulation: { engine_every: '5m', sync_every: '6h' },
      fleet: [
        {
          name: 'vehicles',
          count,
          id_prefix: 'veh-',
          profile: 'vehicle',
          hardware_type: 'tcu-4',
          firmware: { '2.3.1': 0.8, '2.3.0': 0.2 },
          timezones: {
            'America/New_York': 0.35,
            'America/Chicago': 0.3,
            'America/Denver': 0.1,
            'America/Los_Angeles': 0.25,
          },
          install_seconds: { lognormal: { median: 900, sigma: 0.3 } },
          failure_rate: 0.01,
        },
      ],
      rollouts: [
        {
          at: '14h',
          spec: {
            name: 'tcu-2.4.0',
            release: 'tcu-fw@2.4.0',
            filter: '',
            strategy: 'progressive',
            max_concurrent: Math.max(10, Math.round(count / 20)),
            phases: [
              { name: 'canary', percentage: 1, wait: '24h', success_rate: 95 },
              { name: 'early', percentage: 10, wait: '12h', success_rate: 90 },
              { name: 'full', percentage: 100, success_rate: 85 },
            ],
          },
        },
      ],
    },
    'demo-vehicles',
  );
}

const n = (x: number | undefined) => (x ?? 0).toLocaleString('en-US');
const finished = (c: StateCounts) => (c.succeeded ?? 0) + (c.failed ?? 0) + (c.rolled_back ?? 0);

/** The summary in the spirit of seed 000's "Update Delivery Flow". */
export function deliveryFlow(result: SimResult): string {
  const r = result.rollouts[0];
  if (!r) return 'no rollout ran';
  const start = Date.parse(r.started_at ?? result.start);
  const at = (hours: number) =>
    r.timeline.find((t) => Date.parse(t.at) >= start + hours * 3_600_000)?.counts ?? r.final;
  const lines = [
    `Update Delivery Flow — ${r.release} to ${n(r.targets)} vehicles (${result.devices.toLocaleString('en-US')} simulated, 4 U.S. time zones)`,
    '',
    ...r.gates.map(
      (g) =>
        `  ${g.name.padEnd(7)} ${g.decision.padEnd(6)} ${g.at}  success ${g.success_rate?.toFixed(1) ?? '—'}% of ${n(g.finished)} (needs ${g.threshold ?? '—'}%)`,
    ),
    '',
    '  Delivered over time (updated / targets):',
    ...[6, 24, 36, 48, 72, 120, 154].map(
      (h) => `    +${String(h).padStart(3)} h  ${n(at(h).succeeded)} updated, ${n(finished(at(h)))} finished`,
    ),
    '',
    `  Final: ${Object.entries(r.final)
      .map(([s, c]) => `${s} ${n(c)}`)
      .join(', ')}; rollout ${r.state}`,
    `  Peak ${r.peak_concurrent} vehicles updating at once (limit ${r.max_concurrent}); ${r.outside_window} outside a window; ${r.double_offers} offered twice`,
    ...r.eta.map(
      (e) =>
        `  ETA at phase ${e.phase + 1}: ${e.predicted_finish ?? 'unknown'} (actual ${e.actual_finish ?? 'not finished'})`,
    ),
    '',
    `  Checks: ${result.checks.filter((c) => c.pass).length}/${result.checks.length} passed; simulated in ${result.run.wall_seconds} s`,
  ];
  return lines.join('\n');
}

export function registerVehiclesDemo(demo: Command, ctx: { format(): OutputFormat }): void {
  demo
    .command('vehicles')
    .description("seed 000's flow: 10,000 vehicles, canary 1% → early 10% → full, over 7 simulated days")
    .option('--count <n>', 'vehicles', '10000')
    .option('--seed <n>', 'seed of the simulation', '0')
    .action(async (flags: { count: string; seed: string }) => {
      const count = Number(flags.count);
      if (!Number.isInteger(count) || count < 100)
        throw new CliError('--count: must be a whole number, at least 100');
      const result = await simulate(vehiclesScenario(count, Number(flags.seed)), ctx.format() === 'json');
      if (ctx.format() === 'json') printJson(result);
      else process.stdout.write(`${deliveryFlow(result)}\n`);
      if (!result.pass) process.exitCode = 1;
    });
}
