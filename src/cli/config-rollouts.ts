/**
 * Rolling a staged configuration version out with a strategy (docs/configuration.md): `fleetd config rollout NAME
 * VERSION [--phases 1,10%,50%,100%] [--interval 10m] [--max-failure-rate 5%] [--promote]`, `config rollouts
 * [NAME]`, and `config rollout-pause|rollout-resume|rollout-cancel NAME`. The flags read as `deploy create`'s:
 * `--interval` is each phase's soak.
 */
import type { Command } from 'commander';
import type { Static } from 'typebox';
import {
  DEFAULT_CONFIG_PHASES,
  DEFAULT_CONFIG_SOAK,
  DEFAULT_MAX_FAILURE_RATE,
  parseFailureRate,
  parsePhaseList,
} from '../core/config-rollout.js';
import { DURATION_LIMITS, formatDuration, parseDuration } from '../core/duration.js';
import type { ConfigRolloutJson, ConfigRolloutList } from '../protocol/config-rollouts.js';
import { CliError, type Client } from './client.js';
import { ago, type OutputFormat, printJson, table } from './output.js';

interface Ctx {
  client(): Client;
  format(): OutputFormat;
}

type Rollout = Static<typeof ConfigRolloutJson>;
const path = (name: string) => `/api/v1/config/${encodeURIComponent(name)}/rollout`;

function versionOf(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new CliError(`version '${text}': a whole number from 1`);
  return n;
}

/** One line: where it is and why. */
function summary(r: Rollout): string {
  const phase = r.phases[r.phase - 1];
  const where = `phase ${r.phase} of ${r.phases.length} (${phase?.share ?? '?'})`;
  return `${r.name} version ${r.version}: ${r.state}, ${where}${r.reason ? `: ${r.reason}` : ''}`;
}

function printRollout(r: Rollout): void {
  console.log(summary(r));
  console.log(
    `soak ${formatDuration(r.soak)} per phase, halts over ${r.max_failure_rate}% failed, ${r.promote ? 'promotes at the end' : 'stays staged at the end'}; started by ${r.created_by} ${ago(r.created_at)}`,
  );
  console.log(
    table(
      ['PHASE', 'SHARE', 'STARTED', 'RELEASED', 'APPLIED', 'FAILED', 'NOT REPORTED'],
      r.phases.map((p, i) => [
        `${i + 1}${i + 1 === r.phase && r.state !== 'completed' ? ' *' : ''}`,
        p.share,
        p.started_at ? ago(p.started_at) : '-',
        p.counts?.released ?? '-',
        p.counts?.applied ?? '-',
        p.counts?.failed ?? '-',
        p.counts?.pending ?? '-',
      ]),
    ),
  );
}

export function registerConfigRollouts(config: Command, ctx: Ctx): void {
  config
    .command('rollout')
    .argument('<name>', 'document name')
    .argument('<version>', 'the staged version')
    .option(
      '--phases <list>',
      `cumulative phases: a number is that many devices, a percentage a share (default ${DEFAULT_CONFIG_PHASES})`,
    )
    .option(
      '--interval <duration>',
      `soak time of each phase before its gate judges (default ${DEFAULT_CONFIG_SOAK})`,
    )
    .option(
      '--max-failure-rate <percent>',
      `halt once more than this share of a phase's devices failed (default ${DEFAULT_MAX_FAILURE_RATE}%)`,
    )
    .option('--promote', 'promote the staged version after the last phase (default: leave it staged)')
    .description(
      'roll the staged version out phase by phase; the server releases, judges and halts by itself',
    )
    .action(
      async (
        name: string,
        v: string,
        opts: { phases?: string; interval?: string; maxFailureRate?: string; promote?: boolean },
      ) => {
        // Checked here by the server's own rules, so a typo is one line and no round trip.
        if (opts.phases !== undefined) parsePhaseList(opts.phases, '--phases');
        if (opts.interval !== undefined) parseDuration(opts.interval, '--interval', DURATION_LIMITS.wait);
        const body = {
          version: versionOf(v),
          ...(opts.phases !== undefined ? { phases: opts.phases } : {}),
          ...(opts.interval !== undefined ? { soak: opts.interval } : {}),
          ...(opts.maxFailureRate !== undefined
            ? { max_failure_rate: parseFailureRate(opts.maxFailureRate, '--max-failure-rate') }
            : {}),
          ...(opts.promote ? { promote: true } : {}),
        };
        const r = await ctx.client().request<Rollout>('POST', path(name), body);
        if (ctx.format() === 'json') return printJson(r);
        console.log(`${summary(r)}; follow it with fleetd config rollouts ${name}`);
      },
    );

  config
    .command('rollouts')
    .argument('[name]', "one document's rollout, with each phase's counts")
    .description('configuration rollouts, newest first; with NAME, its active (else latest) one in detail')
    .action(async (name: string | undefined) => {
      const client = ctx.client();
      if (name !== undefined) {
        const r = await client.request<Rollout>('GET', path(name));
        return ctx.format() === 'json' ? printJson(r) : printRollout(r);
      }
      const list = await client.request<Static<typeof ConfigRolloutList>>('GET', '/api/v1/config-rollouts');
      if (ctx.format() === 'json') return printJson(list);
      console.log(
        table(
          ['NAME', 'VERSION', 'STATE', 'PHASE', 'RELEASED', 'FAILED', 'STARTED', 'REASON'],
          list.rollouts.map((r) => [
            r.name,
            r.version,
            r.state,
            `${r.phase}/${r.phases.length} (${r.phases[r.phase - 1]?.share ?? '?'})`,
            r.phases.reduce((n, p) => n + (p.counts?.released ?? 0), 0),
            r.phases.reduce((n, p) => n + (p.counts?.failed ?? 0), 0),
            ago(r.created_at),
            r.reason ?? '',
          ]),
        ),
      );
    });

  for (const [action, description] of [
    ['pause', 'pause the configuration rollout: no more devices, no gate judged'],
    ['resume', 'resume a paused or halted configuration rollout (a halted phase is judged again)'],
    ['cancel', 'cancel the configuration rollout and drop the staged version: its devices go back'],
  ] as const) {
    config
      .command(`rollout-${action}`)
      .argument('<name>', 'document name')
      .description(description)
      .action(async (name: string) => {
        const r = await ctx.client().request<Rollout>('POST', `${path(name)}/${action}`);
        if (ctx.format() === 'json') return printJson(r);
        console.log(summary(r));
      });
  }
}
