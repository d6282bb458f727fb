/** `fleetd groups create | ls | show | add | remove | rm` (docs/groups.md) */
import type { Command } from 'commander';
import type { GroupJson, GroupMembersReplyJson } from '../protocol/groups.js';
import type { Client } from './client.js';
import { type OutputFormat, printJson, table } from './output.js';

interface Ctx {
  client(): Client;
  format(): OutputFormat;
}

const path = (name: string) => `/api/v1/groups/${encodeURIComponent(name)}`;

export function registerGroups(program: Command, ctx: Ctx): void {
  const groups = program
    .command('groups')
    .description('named groups of devices: static (listed ids) or dynamic (a saved filter), docs/groups.md');

  groups
    .command('create')
    .argument('<name>', 'letters, digits, _ . -')
    .description('create a group: dynamic with --filter, static (add members with groups add) without')
    .option('--filter <expr>', 'the filter that decides its members (a dynamic group)')
    .option('--description <text>', 'what the group is for')
    .action(async (name: string, opts: { filter?: string; description?: string }) => {
      const g = await ctx.client().request<GroupJson>('POST', '/api/v1/groups', {
        name,
        ...(opts.filter !== undefined ? { filter: opts.filter } : {}),
        ...(opts.description !== undefined ? { description: opts.description } : {}),
      });
      if (ctx.format() === 'json') return printJson(g);
      console.log(`group ${g.name} (${g.kind}): ${g.member_count} device(s)`);
    });

  groups
    .command('ls')
    .description('groups with their member counts')
    .action(async () => {
      const r = await ctx.client().request<{ groups: GroupJson[] }>('GET', '/api/v1/groups');
      if (ctx.format() === 'json') return printJson(r);
      console.log(
        table(
          ['NAME', 'KIND', 'MEMBERS', 'FILTER', 'DESCRIPTION'],
          r.groups.map((g) => [g.name, g.kind, g.member_count, g.filter, g.description]),
        ),
      );
    });

  groups
    .command('show')
    .argument('<name>')
    .description('one group, its member count and its first members')
    .action(async (name: string) => {
      const r = await ctx.client().request<{ group: GroupJson; members: string[] }>('GET', path(name));
      if (ctx.format() === 'json') return printJson(r);
      const g = r.group;
      const rows: Array<[string, string | number | null]> = [
        ['name', g.name],
        ['kind', g.kind],
        ['filter', g.filter],
        ['description', g.description || null],
        ['members', g.member_count],
        ['created', g.created_at],
        ['updated', g.updated_at],
      ];
      for (const [k, v] of rows) console.log(`${k.padEnd(13)}${v ?? '-'}`);
      if (r.members.length > 0) console.log(`\n${r.members.join('\n')}`);
      if (r.members.length < g.member_count) console.log(`… and ${g.member_count - r.members.length} more`);
    });

  for (const op of ['add', 'remove'] as const) {
    groups
      .command(op)
      .argument('<name>')
      .argument('<ids...>', 'device ids')
      .description(
        `${op === 'add' ? 'add devices to' : 'remove devices from'} a static group; one line per device`,
      )
      .action(async (name: string, ids: string[]) => {
        const r = await ctx.client().request<GroupMembersReplyJson>('POST', `${path(name)}/${op}`, { ids });
        if (ctx.format() === 'json') printJson(r);
        else {
          for (const item of r.results) {
            const done = op === 'add' ? 'added' : 'removed';
            const already = op === 'add' ? 'already a member' : 'not a member';
            console.log(`${item.id}: ${item.ok ? (item.changed ? done : already) : item.error?.message}`);
          }
        }
        if (r.results.some((item) => !item.ok)) process.exitCode = 1;
      });
  }

  groups
    .command('rm')
    .argument('<name>')
    .description('delete a group (refused while an open rollout, a scope or another group names it)')
    .action(async (name: string) => {
      const r = await ctx.client().request<{ deleted: string }>('DELETE', path(name));
      if (ctx.format() === 'json') return printJson(r);
      console.log(`deleted group ${r.deleted}`);
    });
}
