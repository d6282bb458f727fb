/** `fleetd deploy …`: rollouts (create, watch, control) and plain assignments of a release to devices. */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { parseRolloutSpec } from '../core/rollout/spec.js';
import type { RehearsalJson } from '../protocol/rehearsal.js';
import type { UpdateJson } from '../protocol/releases.js';
import type { PlanJson, RolloutJson } from '../protocol/rollouts.js';
import { CliError, type Client } from './client.js';
import { type OutputFormat, printJson, table } from './output.js';
import { hasQuickFlags, type QuickFlags, quickSpec } from './quick-spec.js';
import { renderRehearsal } from './rehearsal-view.js';
import {
  FINAL_ROLLOUT_STATES,
  renderPlan,
  renderRollout,
  rollbackSummary,
  rolloutRows,
} from './rollout-view.js';

interface Ctx {
  client(): Client;
  format(): OutputFormat;
}

/** Reads a spec file (YAML or JSON) and checks it here first, with the same parser as the server. */
function readSpec(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (error) {
    throw new CliError(
      `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
  let data: unknown;
  try {
    data = text.trimStart().startsWith('{') ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new CliError(`${file}: not valid YAML or JSON: ${(error as Error).message.split('\n')[0]}`);
  }
  try {
    parseRolloutSpec(data);
  } catch (error) {
    throw new CliError(`${file}: ${(error as Error).message}`);
  }
  return data;
}

/** The spec of `deploy create`: a file, or flags (never both), checked here with the server's parser. */
function specOf(opts: { file?: string } & QuickFlags): unknown {
  const quick = hasQuickFlags(opts);
  if (opts.file !== undefined && quick)
    throw new CliError('-f: give a spec file or the flags of a quick rollout (--release …), not both');
  if (opts.file !== undefined) return readSpec(opts.file);
  if (!quick)
    throw new CliError('-f: required, or create from flags with --release (see fleetd deploy create --help)');
  const spec = quickSpec(opts);
  try {
    parseRolloutSpec(spec);
  } catch (error) {
    throw new CliError((error as Error).message);
  }
  return spec;
}

interface RehearseFlags {
  rehearse?: boolean;
  failureRate?: string;
  deadline?: string;
  seeds?: string;
}

/** The rehearsal's query from its flags, checked here so that a typo gets one clear line. */
function rehearseQuery(opts: RehearseFlags): string {
  const q = new URLSearchParams();
  if (opts.failureRate !== undefined) {
    const text = opts.failureRate.trim();
    const rate = text.endsWith('%') ? Number(text.slice(0, -1)) / 100 : Number(text);
    if (text === '' || !Number.isFinite(rate) || rate < 0 || rate > 1)
      throw new CliError(`--failure-rate: "${opts.failureRate}" is not a share between 0 and 1 (or 0%–100%)`);
    q.set('failure_rate', String(rate));
  }
  if (opts.seeds !== undefined) {
    if (!/^\d+$/.test(opts.seeds) || Number(opts.seeds) < 1 || Number(opts.seeds) > 10)
      throw new CliError(`--seeds: "${opts.seeds}" is not a whole number from 1 to 10`);
    q.set('seeds', opts.seeds);
  }
  if (opts.deadline !== undefined) q.set('deadline', opts.deadline);
  const text = q.toString();
  return text ? `?${text}` : '';
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function registerDeploy(program: Command, ctx: Ctx): void {
  const deploy = program.command('deploy').description('roll releases out to devices');
  const show = (r: RolloutJson) =>
    ctx.format() === 'json' ? printJson(r) : console.log(renderRollout(r, Date.now()));

  deploy
    .command('create')
    .option('-f, --file <spec>', 'rollout spec, YAML or JSON (- for standard input)')
    .option('--dry-run', 'print the plan (targets, phases, windows, timeline) and create nothing')
    .option('--release <name@version>', 'without -f: the release')
    .option('--filter <filter>', 'without -f: the devices (default the whole fleet)')
    .option('--strategy <strategy>', 'without -f: immediate (default), progressive, rolling, on_connect')
    .option('--name <name>', 'without -f: the rollout name (default "<release> <strategy>")')
    .option('--initial <percent>', 'progressive: the first phase, e.g. 5%')
    .option(
      '--increment <percent>',
      'progressive: each later phase adds this much, up to 100% (default 100%)',
    )
    .option('--interval <duration>', 'progressive: soak time of each phase but the last, e.g. 1h')
    .option('--success-rate <percent>', "progressive: each phase's gate (default 95)")
    .option('--max-concurrent <n>', 'without -f: devices downloading at once (default 100)')
    .option('--batch-size <n>', 'without -f, rolling: devices per batch')
    .option(
      '--adopt-tuf',
      'without -f: devices without TUF adopt the root signed with `fleetd keys migrate` (docs/signing.md)',
    )
    .option('--rehearse', "play it out in virtual time on the fleet's own history, create nothing")
    .option('--failure-rate <rate>', 'with --rehearse: share of attempts that fail, 0–1 or a percentage (5%)')
    .option(
      '--deadline <duration>',
      'with --rehearse: find the smallest max_concurrent finishing within it (72h)',
    )
    .option('--seeds <n>', 'with --rehearse: runs behind the P50/P90 (default 5, at most 10)')
    .description('create a rollout from a spec file, or from flags (see docs/rollouts.md)')
    .action(async (opts: { file?: string; dryRun?: boolean } & RehearseFlags & QuickFlags) => {
      const spec = specOf(opts);
      const client = ctx.client();
      if (opts.rehearse) {
        const r = await client.request<RehearsalJson>(
          'POST',
          `/api/v1/rollouts/rehearse${rehearseQuery(opts)}`,
          spec,
        );
        return ctx.format() === 'json' ? printJson(r) : console.log(renderRehearsal(r, Date.now()));
      }
      if (opts.failureRate !== undefined || opts.deadline !== undefined || opts.seeds !== undefined)
        throw new CliError('--failure-rate, --deadline and --seeds go with --rehearse');
      if (opts.dryRun) {
        const plan = await client.request<PlanJson>('POST', '/api/v1/rollouts?dry_run=true', spec);
        return ctx.format() === 'json' ? printJson(plan) : console.log(renderPlan(plan, Date.now()));
      }
      const r = await client.request<RolloutJson>('POST', '/api/v1/rollouts', spec);
      if (ctx.format() === 'json') return printJson(r);
      console.log(`created ${r.id}`);
      show(r);
    });

  deploy
    .command('ls')
    .description('rollouts, newest first')
    .option('--state <state>', 'only rollouts in this state (running, halted, …)')
    .action(async (opts: { state?: string }) => {
      const q = opts.state ? `?state=${encodeURIComponent(opts.state)}` : '';
      const r = await ctx.client().request<{ rollouts: RolloutJson[] }>('GET', `/api/v1/rollouts${q}`);
      if (ctx.format() === 'json') return printJson(r);
      console.log(
        table(
          ['ID', 'NAME', 'STRATEGY', 'RELEASE', 'STATE', 'PHASE', 'DONE', 'SUCCESS', 'ETA'],
          rolloutRows(r.rollouts),
        ),
      );
    });

  deploy
    .command('show')
    .argument('<rollout>', 'rollout id')
    .description('one rollout: phases, gates, ETA, failing devices')
    .action(async (id: string) =>
      show(await ctx.client().request<RolloutJson>('GET', `/api/v1/rollouts/${encodeURIComponent(id)}`)),
    );

  deploy
    .command('watch')
    .argument('<rollout>', 'rollout id')
    .option('--interval <seconds>', 'refresh every N seconds', '2')
    .description(
      'live progress per phase; exits when the rollout completes (0), or halts, is cancelled or rolled back (1)',
    )
    .action(async (id: string, opts: { interval: string }) => {
      const every = Number(opts.interval);
      if (!(every > 0))
        throw new CliError(`--interval: "${opts.interval}" must be a positive number of seconds`);
      const client = ctx.client();
      const tty = process.stdout.isTTY && ctx.format() === 'table';
      let last = '';
      for (;;) {
        const r = await client.request<RolloutJson>('GET', `/api/v1/rollouts/${encodeURIComponent(id)}`);
        const text = ctx.format() === 'json' ? JSON.stringify(r) : renderRollout(r, Date.now());
        if (tty) process.stdout.write(`\x1b[H\x1b[2J${text}\n`);
        else if (text !== last) console.log(ctx.format() === 'json' ? text : `${text}\n`);
        last = text;
        if (FINAL_ROLLOUT_STATES.has(r.state) || r.state === 'halted') {
          if (r.state === 'completed') return;
          throw new CliError(`rollout ${r.id} ${r.state}${r.reason ? `: ${r.reason}` : ''}`);
        }
        await sleep(every * 1000);
      }
    });

  const commands: Array<[string, string]> = [
    ['pause', 'stop offering the update (devices at work finish)'],
    ['resume', 'carry on after a pause; on a halted rollout, override the gate that halted it'],
    ['cancel', 'end the rollout: devices not started never will, downloads are called off'],
    ['approve', 'approve the next phase of a progressive rollout with manual approval'],
    ['promote', 'progressive: start the next phase now; blue_green: switch every staged device now'],
    ['rollback', 'return every device this rollout updated to the version it had before'],
  ];
  for (const [command, description] of commands) {
    deploy
      .command(command)
      .argument('<rollout>', 'rollout id')
      .description(description)
      .action(async (id: string) => {
        const r = await ctx
          .client()
          .request<RolloutJson>('POST', `/api/v1/rollouts/${encodeURIComponent(id)}/${command}`);
        if (ctx.format() !== 'json') console.log(`${r.id}: ${r.state}${r.reason ? ` (${r.reason})` : ''}`);
        if (command === 'rollback') {
          if (ctx.format() !== 'json') for (const line of rollbackSummary(r)) console.log(line);
          // A rollback that leaves devices on the new version has not worked: say so in the exit code.
          if (r.rollback_unavailable) {
            if (ctx.format() === 'json') printJson(r);
            throw new CliError(
              `rollback of ${r.id} incomplete: ${r.rollback_unavailable.count} devices cannot return to their previous version`,
            );
          }
        }
        if (ctx.format() === 'json') return printJson(r);
      });
  }

  deploy
    .command('assign')
    .argument('<release>', 'name@version or release id')
    .requiredOption('--devices <id...>', 'the devices to update')
    .option(
      '--action <action>',
      'install, download_only (stage only) or switch (to a staged release)',
      'install',
    )
    .description('assign a release to explicit devices; they take it on their next heartbeat')
    .action(async (release: string, opts: { devices: string[]; action: string }) => {
      const r = await ctx.client().request<{
        assigned: UpdateJson[];
        skipped: Array<{ device_id: string; reason: string }>;
      }>('POST', '/api/v1/updates/assign', { release, devices: opts.devices, action: opts.action });
      if (ctx.format() === 'json') return printJson(r);
      for (const u of r.assigned) console.log(`${u.device_id}: assigned (${u.id})`);
      for (const s of r.skipped) console.log(`${s.device_id}: skipped — ${s.reason}`);
    });

  deploy
    .command('updates')
    .description('device updates, newest first')
    .option('--device <id>', "one device's updates")
    .option('--release <release>', "one release's updates")
    .action(async (opts: { device?: string; release?: string }) => {
      const params = new URLSearchParams();
      if (opts.device) params.set('device', opts.device);
      if (opts.release) params.set('release', opts.release);
      const r = await ctx.client().request<{ updates: UpdateJson[] }>('GET', `/api/v1/updates?${params}`);
      if (ctx.format() === 'json') return printJson(r);
      console.log(
        table(
          ['ID', 'DEVICE', 'STATE', 'PROGRESS', 'ERROR', 'UPDATED'],
          r.updates.map((u) => [
            u.id,
            u.device_id,
            u.state,
            u.progress === null ? null : `${u.progress}%`,
            u.error,
            u.updated_at,
          ]),
        ),
      );
    });
}
