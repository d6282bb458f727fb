/** `fleetd enrollment create|ls|revoke`: the tokens devices register themselves with. */
import type { Command } from 'commander';
import type { EnrollmentTokenJson as TokenJson } from '../protocol/operator-api.js';
import { CliError, type Client } from './client.js';
import { type OutputFormat, printJson, table } from './output.js';

interface Ctx {
  client(): Client;
  format(): OutputFormat;
}

export function registerEnrollment(program: Command, ctx: Ctx): void {
  const enrollment = program.command('enrollment').description('tokens devices use to register themselves');
  enrollment
    .command('create')
    .description('create an enrollment token (printed once; it expires after 7 days unless --expires says)')
    .option('--uses <n>', 'how many devices may enroll with it (default: unlimited)')
    .option('--expires <duration>', 'e.g. 12h or 30d (default: 7d)')
    .option('--tag <key=value...>', 'tags given to every device that enrolls with it')
    .option(
      '--claim <filter>',
      'let it claim pre-registered (imported) devices matching this filter (default: new device ids only)',
    )
    .action(async (opts: { uses?: string; expires?: string; tag?: string[]; claim?: string }) => {
      const uses = opts.uses === undefined ? undefined : Number(opts.uses);
      if (uses !== undefined && (!Number.isInteger(uses) || uses < 1)) {
        throw new CliError(`--uses: "${opts.uses}" is not a positive integer`);
      }
      const tags: Record<string, string> = {};
      for (const pair of opts.tag ?? []) {
        const at = pair.indexOf('=');
        if (at <= 0) throw new CliError(`--tag: "${pair}" is not key=value`);
        tags[pair.slice(0, at)] = pair.slice(at + 1);
      }
      const r = await ctx
        .client()
        .request<{ id: string; token: string; expires_at: string }>('POST', '/api/v1/enrollment-tokens', {
          ...(uses !== undefined ? { uses } : {}),
          ...(opts.expires !== undefined ? { expires_in: opts.expires } : {}),
          ...(opts.tag ? { tags } : {}),
          ...(opts.claim !== undefined ? { claim: opts.claim } : {}),
        });
      if (ctx.format() === 'json') return printJson(r);
      // stdout is the token alone, for scripts; what to know about it goes to stderr.
      console.log(r.token);
      const expiry = opts.expires === undefined ? ' (the default 7 days; --expires to change)' : '';
      console.error(
        `enrollment token ${r.id}: expires ${r.expires_at}${expiry}; ` +
          (opts.claim === undefined
            ? 'registers new device ids only (--claim FILTER lets it claim imported devices)'
            : `may claim imported devices matching: ${opts.claim}`),
      );
    });

  enrollment
    .command('ls')
    .description('list enrollment tokens (their ids; a token itself is shown only when created)')
    .action(async () => {
      const r = await ctx.client().request<{ tokens: TokenJson[] }>('GET', '/api/v1/enrollment-tokens');
      if (ctx.format() === 'json') return printJson(r);
      console.log(
        table(
          ['ID', 'STATE', 'USES LEFT', 'EXPIRES', 'CLAIM', 'TAGS', 'CREATED'],
          r.tokens.map((t) => [
            t.id,
            t.state,
            t.uses_left ?? 'unlimited',
            t.expires_at ?? 'never',
            t.claim ?? '-',
            Object.entries(t.tags)
              .map(([k, v]) => `${k}=${v}`)
              .join(','),
            t.created_at,
          ]),
        ),
      );
    });

  enrollment
    .command('revoke')
    .argument('<id>', 'token id, as `fleetd enrollment ls` shows it')
    .description('revoke an enrollment token: no device enrolls with it any more')
    .action(async (id: string) => {
      const r = await ctx
        .client()
        .request<{ revoked: string }>('DELETE', `/api/v1/enrollment-tokens/${encodeURIComponent(id)}`);
      if (ctx.format() === 'json') return printJson(r);
      console.log(`enrollment token ${r.revoked} revoked`);
    });
}
