/** `fleetd tokens create | ls | revoke` (docs/access.md) */
import type { Command } from 'commander';
import type { TokenJsonType } from '../protocol/access.js';
import type { Client } from './client.js';
import { type OutputFormat, printJson, table } from './output.js';

interface Ctx {
  client(): Client;
  format(): OutputFormat;
}

export function registerTokens(program: Command, ctx: Ctx): void {
  const tokens = program
    .command('tokens')
    .description('API tokens for CI and scripts: a role, a scope, an expiry (docs/access.md)');

  tokens
    .command('create')
    .argument('<name>', 'what the token is for, e.g. ci-release')
    .description('create a token; prints its secret once')
    .requiredOption('--role <role>', 'viewer, operator, release-manager, admin or a custom role')
    .option('--scope <filter>', 'only the devices matching this filter, e.g. "tag.region=west"')
    .option('--expires <duration>', 'lifetime, e.g. 90d (default: no expiry)')
    .action(async (name: string, opts: { role: string; scope?: string; expires?: string }) => {
      const t = await ctx.client().request<TokenJsonType & { token: string }>('POST', '/api/v1/tokens', {
        name,
        role: opts.role,
        ...(opts.scope !== undefined ? { scope: opts.scope } : {}),
        ...(opts.expires !== undefined ? { expires_in: opts.expires } : {}),
      });
      if (ctx.format() === 'json') return printJson(t);
      console.log(
        `token ${t.id} "${t.name}" (${t.role}${t.scope ? `, scope ${t.scope}` : ''}, expires ${t.expires_at ?? 'never'})`,
      );
      console.log(`secret (shown once): ${t.token}`);
    });

  tokens
    .command('ls')
    .description('API tokens, newest first (never their secrets)')
    .action(async () => {
      const r = await ctx.client().request<{ tokens: TokenJsonType[] }>('GET', '/api/v1/tokens');
      if (ctx.format() === 'json') return printJson(r);
      console.log(
        table(
          ['ID', 'NAME', 'ROLE', 'SCOPE', 'EXPIRES', 'LAST USED', 'REVOKED'],
          r.tokens.map((t) => [
            t.id,
            t.name,
            t.role,
            t.scope ?? '(all devices)',
            t.expires_at ?? 'never',
            t.last_used_at ?? 'never',
            t.revoked_at,
          ]),
        ),
      );
    });

  tokens
    .command('revoke')
    .argument('<id>')
    .description('revoke a token: refused from its next request on')
    .action(async (id: string) => {
      const t = await ctx
        .client()
        .request<TokenJsonType>('DELETE', `/api/v1/tokens/${encodeURIComponent(id)}`);
      if (ctx.format() === 'json') return printJson(t);
      console.log(`token ${t.id} "${t.name}" revoked`);
    });
}
