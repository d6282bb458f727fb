/** `fleetd demo pos`: seed 001's six POS scenarios on the example fleet, in virtual time, with a device-by-device account. */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { POS_SCENARIOS, type PosFleetFile, renderAccount, runPosScenario } from '../sim/pos-demo.js';
import { type OutputFormat, printJson } from './output.js';

/** The example fleet ships with FleetD (examples/pos-fleet.json, beside dist/). */
const EXAMPLE_FLEET = new URL('../../../examples/pos-fleet.json', import.meta.url);

export function registerDemo(program: Command, ctx: { format(): OutputFormat }): Command {
  const demo = program
    .command('demo')
    .description('rehearse FleetD on example fleets, in virtual time (nothing else is touched)');
  demo
    .command('pos')
    .description(
      "seed 001's six scenarios on the 10-terminal POS fleet: immediate, night window, progressive, on-connect, region, old firmware",
    )
    .option('--fleet <file>', 'another fleet file in the same format', '')
    .option('--scenario <n>', 'run only this scenario (1–6)')
    .action(async (opts: { fleet: string; scenario?: string }) => {
      const file = JSON.parse(readFileSync(opts.fleet || EXAMPLE_FLEET, 'utf8')) as PosFleetFile;
      const wanted = opts.scenario === undefined ? undefined : Number(opts.scenario);
      const accounts = [];
      for (const s of POS_SCENARIOS.filter((x) => wanted === undefined || x.number === wanted)) {
        const a = await runPosScenario(file, s);
        accounts.push(a);
        if (ctx.format() === 'table') console.log(`${renderAccount(a)}\n`);
      }
      if (ctx.format() === 'json') printJson({ scenarios: accounts });
    });
  return demo;
}
