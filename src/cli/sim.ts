/**
 * `fleetd sim run SCENARIO.yaml`: rehearses rollouts on a simulated fleet against the real server in
 * virtual time (src/sim/, docs/simulator.md). Exits 1 when an invariant check fails.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { isFleetError } from '../core/errors.js';
import { formatReport } from '../sim/report.js';
import { buildResult, type SimResult } from '../sim/result.js';
import { parseScenarioText, type Scenario } from '../sim/scenario.js';
import { Simulator } from '../sim/simulator.js';
import { CliError } from './client.js';
import { type OutputFormat, printJson } from './output.js';

export async function simulate(scenario: Scenario, quiet: boolean): Promise<SimResult> {
  const sim = new Simulator(
    scenario,
    quiet ? {} : { progress: (line) => process.stderr.write(`[sim] ${line}\n`) },
  );
  return buildResult(await sim.run());
}

export function loadScenario(file: string, layer?: string): Scenario {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new CliError(`${file}: ${(error as Error).message}`);
  }
  try {
    const scenario = parseScenarioText(text, basename(file).replace(/\.ya?ml$/, ''));
    if (layer !== undefined) {
      if (layer !== 'store' && layer !== 'http') throw new CliError('--layer: must be store or http');
      scenario.simulation.layer = layer;
    }
    return scenario;
  } catch (error) {
    if (isFleetError(error)) throw new CliError(`${file}: ${error.message}`);
    throw error;
  }
}

export function registerSim(program: Command, ctx: { format(): OutputFormat }): void {
  const sim = program.command('sim').description('simulate a fleet against the real server in virtual time');
  sim
    .command('run <scenario>')
    .description('run a scenario file (fleet, rollouts, actions, faults) and report what happened')
    .option('--layer <layer>', 'where devices enter the server: store (default) or http')
    .option('--quiet', 'no progress lines on stderr')
    .action(async (file: string, flags: { layer?: string; quiet?: boolean }) => {
      const result = await simulate(
        loadScenario(file, flags.layer),
        flags.quiet === true || ctx.format() === 'json',
      );
      if (ctx.format() === 'json') printJson(result);
      else process.stdout.write(`${formatReport(result)}\n`);
      if (!result.pass) process.exitCode = 1;
    });
}
