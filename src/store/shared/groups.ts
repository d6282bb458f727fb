/**
 * Device groups in shared SQL (docs/groups.md): static groups (rows of group_members) and dynamic ones (a saved
 * filter), and the expansion of `group = NAME` terms that every filter goes through before it is compiled.
 * Writes of groups take the table's lock (PostgreSQL), so two edits cannot make a cycle between them that
 * neither saw.
 */
import { FleetError } from '../../core/errors.js';
import {
  expandGroups,
  type FilterNode,
  type GroupDefinition,
  groupNames,
  parseFilter,
} from '../../core/filter/index.js';
import { OPEN_ROLLOUT_STATES } from '../../core/rollout/rollout-state.js';
import type { SqlContext } from '../adapter.js';
import type { DeviceGroupsTable } from '../schema.js';
import type {
  DeviceGroup,
  GroupChange,
  GroupMemberResult,
  GroupStore,
  GroupUser,
  NewGroup,
  TimeContext,
} from '../store.js';
import { type Db, INSERT_CHUNK, insertEvents } from './events.js';

const toGroup = (r: DeviceGroupsTable): DeviceGroup => ({
  id: r.id,
  name: r.name,
  description: r.description,
  kind: r.kind,
  filter: r.filter,
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
});

async function definitions(db: Db): Promise<Map<string, GroupDefinition>> {
  const rows = await db.selectFrom('device_groups').select(['id', 'name', 'kind', 'filter']).execute();
  return new Map(
    rows.map((r) => [
      r.name,
      r.kind === 'static'
        ? { id: r.id, kind: 'static' }
        : { id: r.id, kind: 'dynamic', filter: r.filter ?? '' },
    ]),
  );
}

/** The filter with its group terms expanded (a FILTER_SYNTAX error names an unknown group or a cycle). */
export async function expandFilter(db: Db, filter: FilterNode | undefined): Promise<FilterNode | undefined> {
  if (filter === undefined || groupNames(filter).size === 0) return filter;
  const groups = await definitions(db);
  return expandGroups(filter, (name) => groups.get(name));
}

const namesIn = (text: string | null): Set<string> => {
  if (text === null) return new Set();
  try {
    return groupNames(parseFilter(text));
  } catch {
    return new Set(); // a text that no longer parses names no group
  }
};

const groupEvent = (type: string, at: number, actor: string, data: Record<string, unknown>) => ({
  at,
  type,
  deviceId: null,
  rolloutId: null,
  actor,
  reason: null,
  data,
});

export class SqlGroups implements GroupStore {
  constructor(private readonly s: SqlContext) {}

  expand(filter: FilterNode | undefined): Promise<FilterNode | undefined> {
    return expandFilter(this.s.db, filter);
  }

  async list(): Promise<DeviceGroup[]> {
    const rows = await this.s.db.selectFrom('device_groups').selectAll().orderBy('name').execute();
    return rows.map(toGroup);
  }

  async get(name: string): Promise<DeviceGroup | undefined> {
    const row = await this.s.db
      .selectFrom('device_groups')
      .selectAll()
      .where('name', '=', name)
      .executeTakeFirst();
    return row && toGroup(row);
  }

  create(group: NewGroup, ctx: TimeContext, actor: string): Promise<DeviceGroup> {
    return this.s.db.transaction().execute(async (trx) => {
      await this.s.adapter.lockTable(trx, 'device_groups');
      const taken = await trx
        .selectFrom('device_groups')
        .select('id')
        .where('name', '=', group.name)
        .executeTakeFirst();
      if (taken)
        throw new FleetError('CONFLICT', `group ${group.name} already exists`, { group: group.name });
      if (group.kind === 'dynamic') await checkDefinition(trx, group.name, group.filter, group.id);
      const row: DeviceGroupsTable = {
        id: group.id,
        name: group.name,
        description: group.description,
        kind: group.kind,
        filter: group.kind === 'dynamic' ? group.filter : null,
        created_at: ctx.now,
        updated_at: ctx.now,
      };
      await trx.insertInto('device_groups').values(row).execute();
      await insertEvents(trx, [
        groupEvent('group.created', ctx.now, actor, {
          group: group.name,
          kind: group.kind,
          filter: row.filter,
        }),
      ]);
      return toGroup(row);
    });
  }

  update(name: string, change: GroupChange, ctx: TimeContext, actor: string): Promise<DeviceGroup> {
    return this.s.db.transaction().execute(async (trx) => {
      await this.s.adapter.lockTable(trx, 'device_groups');
      const row = await mustFind(trx, name);
      if (change.filter !== undefined) {
        if (row.kind === 'static') {
          throw new FleetError('VALIDATION', `group ${name} is static: it has members, not a filter`, {
            field: 'filter',
          });
        }
        await checkDefinition(trx, name, change.filter, row.id);
      }
      const after = {
        ...row,
        description: change.description ?? row.description,
        filter: change.filter ?? row.filter,
        updated_at: ctx.now,
      };
      await trx
        .updateTable('device_groups')
        .set({ description: after.description, filter: after.filter, updated_at: ctx.now })
        .where('id', '=', row.id)
        .execute();
      await insertEvents(trx, [
        groupEvent('group.updated', ctx.now, actor, {
          group: name,
          before: { description: row.description, filter: row.filter },
          after: { description: after.description, filter: after.filter },
        }),
      ]);
      return toGroup(after);
    });
  }

  remove(name: string, ctx: TimeContext, actor: string): Promise<void> {
    return this.s.db.transaction().execute(async (trx) => {
      await this.s.adapter.lockTable(trx, 'device_groups');
      const row = await mustFind(trx, name);
      const users = await usersOf(trx, name);
      if (users.length > 0) {
        const list = users.map((u) => `${u.kind} ${u.name}`).join(', ');
        throw new FleetError('CONFLICT', `group ${name} is in use by ${list}; change those first`, {
          group: name,
          used_by: users,
        });
      }
      await trx.deleteFrom('group_members').where('group_id', '=', row.id).execute();
      await trx.deleteFrom('device_groups').where('id', '=', row.id).execute();
      await insertEvents(trx, [groupEvent('group.deleted', ctx.now, actor, { group: name, kind: row.kind })]);
    });
  }

  addMembers(name: string, ids: string[], ctx: TimeContext, actor: string): Promise<GroupMemberResult[]> {
    return this.changeMembers(name, ids, 'add', ctx, actor);
  }

  removeMembers(name: string, ids: string[], ctx: TimeContext, actor: string): Promise<GroupMemberResult[]> {
    return this.changeMembers(name, ids, 'remove', ctx, actor);
  }

  /** One result per id, in order: an unknown device is its own error and never fails the others. */
  private changeMembers(
    name: string,
    ids: string[],
    op: 'add' | 'remove',
    ctx: TimeContext,
    actor: string,
  ): Promise<GroupMemberResult[]> {
    return this.s.db.transaction().execute(async (trx) => {
      const group = await mustFind(trx, name);
      if (group.kind !== 'static') {
        throw new FleetError('VALIDATION', `group ${name} is dynamic: its filter decides its members`, {
          group: name,
        });
      }
      const unique = [...new Set(ids)];
      const known = new Set<string>();
      const members = new Set<string>();
      for (let i = 0; i < unique.length; i += INSERT_CHUNK) {
        const chunk = unique.slice(i, i + INSERT_CHUNK);
        const found = await trx.selectFrom('devices').select('id').where('id', 'in', chunk).execute();
        for (const r of found) known.add(r.id);
        const current = await trx
          .selectFrom('group_members')
          .select('device_id')
          .where('group_id', '=', group.id)
          .where('device_id', 'in', chunk)
          .execute();
        for (const r of current) members.add(r.device_id);
      }
      const results: GroupMemberResult[] = [];
      const changed: string[] = [];
      for (const id of unique) {
        if (!known.has(id)) {
          results.push({
            id,
            ok: false,
            error: { code: 'DEVICE_NOT_FOUND', message: `device ${id} does not exist` },
          });
          continue;
        }
        const change = op === 'add' ? !members.has(id) : members.has(id);
        results.push({ id, ok: true, changed: change });
        if (change) changed.push(id);
      }
      for (let i = 0; i < changed.length; i += INSERT_CHUNK) {
        const chunk = changed.slice(i, i + INSERT_CHUNK);
        if (op === 'add') {
          await trx
            .insertInto('group_members')
            .values(chunk.map((device_id) => ({ group_id: group.id, device_id })))
            .execute();
        } else {
          await trx
            .deleteFrom('group_members')
            .where('group_id', '=', group.id)
            .where('device_id', 'in', chunk)
            .execute();
        }
      }
      if (changed.length > 0) {
        await insertEvents(trx, [
          groupEvent(op === 'add' ? 'group.members_added' : 'group.members_removed', ctx.now, actor, {
            group: name,
            devices: changed.length,
          }),
        ]);
      }
      return results;
    });
  }
}

async function mustFind(trx: Db, name: string): Promise<DeviceGroupsTable> {
  const row = await trx.selectFrom('device_groups').selectAll().where('name', '=', name).executeTakeFirst();
  if (!row) throw new FleetError('NOT_FOUND', `group ${name} does not exist`, { group: name });
  return row;
}

/** A dynamic group's filter must parse and expand, with this group already defined as it would be. */
async function checkDefinition(trx: Db, name: string, filter: string, id: string): Promise<void> {
  const node = parseFilter(filter);
  if (node === undefined) {
    throw new FleetError(
      'VALIDATION',
      'a dynamic group needs a filter; without one it would be the whole fleet',
      {
        field: 'filter',
      },
    );
  }
  const groups = await definitions(trx);
  groups.set(name, { id, kind: 'dynamic', filter });
  expandGroups({ kind: 'group', name }, (n) => groups.get(n));
}

/** Who names the group: open rollouts, live tokens' and users' scopes, other dynamic groups. */
async function usersOf(trx: Db, name: string): Promise<GroupUser[]> {
  const users: GroupUser[] = [];
  const rollouts = await trx
    .selectFrom('rollouts')
    .select(['name', 'spec'])
    .where('state', 'in', [...OPEN_ROLLOUT_STATES])
    .execute();
  for (const r of rollouts) {
    const filter = (JSON.parse(r.spec) as { filter?: string }).filter ?? null;
    if (namesIn(filter).has(name)) users.push({ kind: 'rollout', name: r.name });
  }
  const tokens = await trx
    .selectFrom('api_tokens')
    .select(['name', 'scope'])
    .where('revoked_at', 'is', null)
    .where('scope', 'is not', null)
    .execute();
  for (const t of tokens) if (namesIn(t.scope).has(name)) users.push({ kind: 'token', name: t.name });
  const people = await trx
    .selectFrom('users')
    .select(['name', 'scope'])
    .where('disabled_at', 'is', null)
    .where('scope', 'is not', null)
    .execute();
  for (const u of people) if (namesIn(u.scope).has(name)) users.push({ kind: 'user', name: u.name });
  const groups = await trx
    .selectFrom('device_groups')
    .select(['name', 'filter'])
    .where('kind', '=', 'dynamic')
    .execute();
  for (const g of groups)
    if (g.name !== name && namesIn(g.filter).has(name)) users.push({ kind: 'group', name: g.name });
  return users;
}
