/** `fleetd audit ls | verify | export` (docs/audit.md) */
import type { Command } from 'commander';
import type { AuditEntryJson, AuditVerdictJson } from '../protocol/audit.js';
import { CliError, type Client } from './client.js';
import { type OutputFormat, printJson, table } from './output.js';

interface Ctx {
  client(): Client;
  format(): OutputFormat;
}

const targetText = (target: Record<string, string>) =>
  Object.entries(target)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');

export function registerAudit(program: Command, ctx: Ctx): void {
  const audit = program
    .command('audit')
    .description('the tamper-evident audit log: who changed what, and failed sign-ins (docs/audit.md)');

  audit
    .command('ls')
    .description('audit entries, newest first')
    .option('--actor <actor>', 'only this actor, e.g. api:admin')
    .option('--since <when>', 'only entries this recent (1h, 7d) or since this ISO-8601 time')
    .option('--limit <n>', 'at most this many entries (1-1000)', '100')
    .action(async (opts: { actor?: string; since?: string; limit: string }) => {
      const query = new URLSearchParams({ limit: opts.limit });
      if (opts.actor !== undefined) query.set('actor', opts.actor);
      if (opts.since !== undefined) query.set('since', opts.since);
      const r = await ctx.client().request<{ entries: AuditEntryJson[] }>('GET', `/api/v1/audit?${query}`);
      if (ctx.format() === 'json') return printJson(r);
      console.log(
        table(
          ['SEQ', 'AT', 'ACTOR', 'ROLE', 'SOURCE', 'ACTION', 'TARGET', 'OUTCOME'],
          r.entries.map((e) => [
            e.seq,
            e.at,
            e.actor ?? '-',
            e.role ?? '-',
            e.source,
            e.action,
            targetText(e.target),
            e.outcome,
          ]),
        ),
      );
    });

  audit
    .command('verify')
    .description(
      'check the hash chain; exits 1 and names the first bad entry when one was edited, deleted or moved',
    )
    .action(async () => {
      const v = await ctx.client().request<AuditVerdictJson>('GET', '/api/v1/audit/verify');
      if (ctx.format() === 'json') {
        printJson(v);
        if (!v.ok) process.exitCode = 1;
        return;
      }
      if (!v.ok) {
        const bad = v.first_bad!;
        throw new CliError(
          `audit log does not verify: entry ${bad.seq}: ${bad.message} (${bad.fault}); ${v.checked} entries before it hold`,
        );
      }
      console.log(
        `audit log verified: ${v.checked} entries, from anchor ${v.anchor.seq} to head ${v.head.seq} (${v.head.hash})`,
      );
    });

  audit
    .command('export')
    .description('the whole audit log, oldest first, as JSON lines')
    .option('--file <path>', 'write to this file (default: standard output)')
    .action(async (opts: { file?: string }) => {
      await ctx.client().download('/api/v1/audit/export', opts.file ?? '-');
    });
}
