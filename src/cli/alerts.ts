/** `fleetd alerts ls`: the alerts the server's alert rules raised (docs/alerts.md). */
import type { Command } from 'commander';
import type { AlertListJson } from '../protocol/alerts.js';
import { CliError, type Client } from './client.js';
import { type OutputFormat, printJson, table } from './output.js';

interface Ctx {
  client(): Client;
  format(): OutputFormat;
}

const STATES = ['pending', 'firing', 'recovering'];

export function registerAlerts(program: Command, ctx: Ctx): void {
  const alerts = program
    .command('alerts')
    .description('alerts raised by the alert rules file of the server (docs/alerts.md)');

  alerts
    .command('ls')
    .description('pending, firing and recovering alerts')
    .option('--state <state>', 'only pending, firing or recovering alerts')
    .option('--rules', 'list the rules in force instead')
    .action(async (opts: { state?: string; rules?: boolean }) => {
      if (opts.state !== undefined && !STATES.includes(opts.state)) {
        throw new CliError(`--state: "${opts.state}" must be one of ${STATES.join(', ')}`);
      }
      const query = opts.state ? `?state=${opts.state}` : '';
      const r = await ctx.client().request<AlertListJson>('GET', `/api/v1/alerts${query}`);
      if (ctx.format() === 'json') return printJson(r);
      if (!r.evaluated) {
        console.log('this server runs without alert rules (fleetd server --alert-rules FILE)');
        return;
      }
      if (opts.rules) {
        console.log(
          table(
            ['RULE', 'KIND', 'SEVERITY', 'FOR', 'RECOVER FOR'],
            r.rules.map((rule) => [rule.name, rule.kind, rule.severity, rule.for, rule.recover_for]),
          ),
        );
        return;
      }
      if (r.alerts.length === 0) {
        console.log(`no alerts (${r.rules.length} rules in force)`);
        return;
      }
      console.log(
        table(
          ['ALERT', 'SEVERITY', 'STATE', 'SINCE', 'VALUE', 'THRESHOLD', 'SUMMARY'],
          r.alerts.map((a) => [a.key, a.severity, a.state, a.since, a.value, a.threshold, a.summary]),
        ),
      );
    });
}
