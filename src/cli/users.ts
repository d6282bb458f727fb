/** `fleetd users add | ls | disable` (docs/access.md) */
import type { Command } from 'commander';
import type { UserJsonType } from '../protocol/access.js';
import { CliError, type Client } from './client.js';
import { type OutputFormat, printJson, table } from './output.js';

interface Ctx {
  client(): Client;
  format(): OutputFormat;
}

/** The password from standard input (never an argument: those show in `ps` and shell history). */
async function readPassword(): Promise<string> {
  if (process.stdin.isTTY) {
    throw new CliError(
      'users add: pipe the password in, e.g. `read -rs P; printf %s "$P" | fleetd users add …`',
    );
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

export function registerUsers(program: Command, ctx: Ctx): void {
  const users = program
    .command('users')
    .description('operator accounts with a role and a scope (docs/access.md)');

  users
    .command('add')
    .argument('<name>', 'sign-in name')
    .description('add a user; the password is read from standard input')
    .requiredOption('--role <role>', 'viewer, operator, release-manager, admin or a custom role')
    .option('--scope <filter>', 'only the devices matching this filter, e.g. "tag.region=west"')
    .action(async (name: string, opts: { role: string; scope?: string }) => {
      const password = await readPassword();
      const u = await ctx.client().request<UserJsonType>('POST', '/api/v1/users', {
        name,
        password,
        role: opts.role,
        ...(opts.scope !== undefined ? { scope: opts.scope } : {}),
      });
      if (ctx.format() === 'json') return printJson(u);
      console.log(`user ${u.name} (${u.role}${u.scope ? `, scope ${u.scope}` : ''})`);
    });

  users
    .command('ls')
    .description('operator accounts')
    .action(async () => {
      const r = await ctx.client().request<{ users: UserJsonType[] }>('GET', '/api/v1/users');
      if (ctx.format() === 'json') return printJson(r);
      console.log(
        table(
          ['NAME', 'ROLE', 'SCOPE', 'CREATED', 'DISABLED'],
          r.users.map((u) => [u.name, u.role, u.scope ?? '(all devices)', u.created_at, u.disabled_at]),
        ),
      );
    });

  users
    .command('disable')
    .argument('<name>')
    .description('disable a user; the name stays taken')
    .action(async (name: string) => {
      const u = await ctx
        .client()
        .request<UserJsonType>('POST', `/api/v1/users/${encodeURIComponent(name)}/disable`);
      if (ctx.format() === 'json') return printJson(u);
      console.log(`user ${u.name} disabled`);
    });
}
