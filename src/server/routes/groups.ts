/**
 * Operator API: device groups (docs/groups.md). Member counts and member lists are the caller's scope's; a
 * scoped caller changes memberships of its own devices only and cannot change or delete a group's definition,
 * which reaches the whole fleet.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { FleetError } from '../../core/errors.js';
import { parseFilter } from '../../core/filter/index.js';
import { iso, withErrors } from '../../protocol/common.js';
import {
  GroupCreateBody,
  GroupDetail,
  GroupJson,
  GroupList,
  GroupMembersBody,
  GroupMembersReply,
  GroupParams,
  GroupUpdateBody,
} from '../../protocol/groups.js';
import { newId } from '../../registry/credentials.js';
import type { DeviceGroup, GroupMemberResult } from '../../store/store.js';
import { AUDITED_DEVICES, auditChange } from '../audit/audit-trail.js';
import { actorOf, operatorOf } from '../auth.js';
import { type ServerContext, timeContext } from '../context.js';
import { idsInScope, refuseScoped, scopedFilter } from '../scope.js';

const MEMBERS_SHOWN = 1_000;

export const groupRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    const member = (g: DeviceGroup) => ({ kind: 'group', name: g.name }) as const;
    const toJson = async (
      request: Parameters<typeof scopedFilter>[0],
      g: DeviceGroup,
    ): Promise<GroupJson> => ({
      name: g.name,
      description: g.description,
      kind: g.kind,
      filter: g.filter,
      member_count: await c.store.countDevices(scopedFilter(request, member(g)), timeContext(c)),
      created_at: iso(g.createdAt)!,
      updated_at: iso(g.updatedAt)!,
    });
    /** What the audit log keeps of a group's definition (its members are counted where they change). */
    const shown = (g: DeviceGroup) => ({
      name: g.name,
      kind: g.kind,
      description: g.description,
      filter: g.filter,
    });
    const mustFind = async (name: string): Promise<DeviceGroup> => {
      const group = await c.store.groups.get(name);
      if (!group)
        throw new FleetError('NOT_FOUND', `group ${name} does not exist; fleetd groups ls lists them`);
      return group;
    };

    app.get(
      '/groups',
      {
        config: { permission: 'groups.read' },
        schema: {
          summary: "List device groups with their member counts (within the caller's scope)",
          tags: ['groups'],
          response: withErrors({ 200: GroupList }),
        },
      },
      async (request) => {
        const groups = await c.store.groups.list();
        const json: GroupJson[] = [];
        for (const g of groups) json.push(await toJson(request, g));
        return { groups: json };
      },
    );

    app.post(
      '/groups',
      {
        config: { permission: 'groups.write' },
        schema: {
          summary: 'Create a group: dynamic with a filter, static (members added later) without',
          tags: ['groups'],
          body: GroupCreateBody,
          response: withErrors({ 201: GroupJson }),
        },
      },
      async (request, reply) => {
        const body = request.body;
        if (body.filter !== undefined) parseFilter(body.filter); // FILTER_SYNTAX before anything is written
        const base = { id: newId('grp'), name: body.name, description: body.description ?? '' };
        const group = await c.store.groups.create(
          body.filter === undefined
            ? { ...base, kind: 'static' }
            : { ...base, kind: 'dynamic', filter: body.filter },
          timeContext(c),
          actorOf(operatorOf(request)),
        );
        auditChange(request, null, shown(group));
        return reply.code(201).send(await toJson(request, group));
      },
    );

    app.get(
      '/groups/:name',
      {
        config: { permission: 'groups.read' },
        schema: {
          summary: "A group, its member count and its first members (within the caller's scope)",
          tags: ['groups'],
          params: GroupParams,
          response: withErrors({ 200: GroupDetail }),
        },
      },
      async (request) => {
        const group = await mustFind(request.params.name);
        const page = await c.store.listDevices({
          ...timeContext(c),
          filter: scopedFilter(request, member(group)),
          limit: MEMBERS_SHOWN,
        });
        return { group: await toJson(request, group), members: page.devices.map((d) => d.id) };
      },
    );

    app.patch(
      '/groups/:name',
      {
        config: { permission: 'groups.write' },
        schema: {
          summary: "Change a group's description, or a dynamic group's filter",
          tags: ['groups'],
          params: GroupParams,
          body: GroupUpdateBody,
          response: withErrors({ 200: GroupJson }),
        },
      },
      async (request) => {
        refuseScoped(request, "changing a group's definition");
        const body = request.body;
        if (body.filter !== undefined) parseFilter(body.filter);
        const before = await c.store.groups.get(request.params.name);
        const group = await c.store.groups.update(
          request.params.name,
          {
            ...(body.description === undefined ? {} : { description: body.description }),
            ...(body.filter === undefined ? {} : { filter: body.filter }),
          },
          timeContext(c),
          actorOf(operatorOf(request)),
        );
        auditChange(request, before && shown(before), shown(group));
        return toJson(request, group);
      },
    );

    app.delete(
      '/groups/:name',
      {
        config: { permission: 'groups.write' },
        schema: {
          summary:
            'Delete a group; refused (409, naming them) while an open rollout, a scope or a group names it',
          tags: ['groups'],
          params: GroupParams,
          response: withErrors({ 200: Type.Object({ deleted: Type.String() }) }),
        },
      },
      async (request) => {
        refuseScoped(request, 'deleting a group');
        const before = await c.store.groups.get(request.params.name);
        await c.store.groups.remove(request.params.name, timeContext(c), actorOf(operatorOf(request)));
        auditChange(request, before && shown(before), null);
        return { deleted: request.params.name };
      },
    );

    for (const op of ['add', 'remove'] as const) {
      app.post(
        `/groups/:name/${op}`,
        {
          config: { permission: 'groups.write' },
          schema: {
            summary: `${op === 'add' ? 'Add devices to' : 'Remove devices from'} a static group; one result per device`,
            tags: ['groups'],
            params: GroupParams,
            body: GroupMembersBody,
            response: withErrors({ 200: GroupMembersReply }),
          },
        },
        async (request) => {
          const ids = [...new Set(request.body.ids)];
          // A device outside the caller's scope is answered as the unknown device it is to this caller.
          const visible = await idsInScope(c, request, ids);
          const inside = ids.filter((id) => visible.has(id));
          const ctx = timeContext(c);
          const actor = actorOf(operatorOf(request));
          const group = await c.store.groups.get(request.params.name);
          // The whole group's count, not the caller's scope's: the entry says what the group itself became.
          const count = () => (group ? c.store.countDevices(member(group), ctx) : Promise.resolve(0));
          const membersBefore = await count();
          const done =
            op === 'add'
              ? await c.store.groups.addMembers(request.params.name, inside, ctx, actor)
              : await c.store.groups.removeMembers(request.params.name, inside, ctx, actor);
          const byId = new Map(done.map((r) => [r.id, r]));
          const results = ids.map(
            (id): GroupMemberResult =>
              byId.get(id) ?? {
                id,
                ok: false,
                error: { code: 'DEVICE_NOT_FOUND', message: `device ${id} does not exist` },
              },
          );
          const changed = results.filter((r) => r.ok && r.changed);
          auditChange(
            request,
            { members: membersBefore },
            {
              members: await count(),
              [op === 'add' ? 'added' : 'removed']: changed.length,
              devices: changed.slice(0, AUDITED_DEVICES).map((r) => r.id),
            },
          );
          return { results, changed: changed.length };
        },
      );
    }
  };
