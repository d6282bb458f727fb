/**
 * Windows on a group or a tag value (docs/rollouts.md, "Windows that belong to devices"): an operator sets,
 * shows, lists and removes them; devices without windows of their own take them in rollouts with
 * `window: device_defined`. They reach every device of the group or with the tag, wherever its scope, so a
 * scoped principal can neither change nor read them (it reads what its own devices take through
 * `GET /api/v1/devices/{id}/windows`).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { FleetError } from '../../core/errors.js';
import { parseDeviceWindows } from '../../core/rollout/device-windows.js';
import { withErrors } from '../../protocol/common.js';
import {
  DeviceWindowsBody,
  GroupWindowParams,
  GroupWindowsJson,
  GroupWindowsListReply,
  groupWindowsJson,
  SharedWindowsListQuery,
  TagWindowParams,
  TagWindowsJson,
  TagWindowsListReply,
  tagWindowsJson,
} from '../../protocol/windows.js';
import type { SharedWindows, WindowTarget } from '../../store/device-window-store.js';
import { auditChange } from '../audit/audit-trail.js';
import { actorOf, operatorOf } from '../auth.js';
import type { ServerContext } from '../context.js';
import { refuseScoped } from '../scope.js';
import { validatorCompiler } from '../validation.js';

/** The body's windows, checked by parseDeviceWindows for errors that name the field (`windows[0].start: …`). */
export function windowsOf(body: unknown) {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new FleetError('VALIDATION', 'body: must be an object with windows', { field: 'body' });
  }
  const extra = Object.keys(body).find((k) => k !== 'windows');
  if (extra !== undefined)
    throw new FleetError('VALIDATION', `${extra}: is not a known field`, { field: extra });
  if (!('windows' in body)) throw new FleetError('VALIDATION', 'windows: is required', { field: 'windows' });
  return parseDeviceWindows(body.windows);
}

const shown = (w: SharedWindows | undefined) => (w ? { windows: w.windows } : null);
const described = (t: WindowTarget) => (t.kind === 'group' ? `group ${t.name}` : `tag ${t.key}=${t.value}`);

export const sharedWindowRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    const checkParts = validatorCompiler([]);
    const bodyChecked = (route: Parameters<typeof checkParts>[0]) =>
      route.httpPart === 'body' ? () => true : checkParts(route);

    /** GET, PUT and DELETE of one target's windows, for groups and tag values alike. */
    const routesFor = <P>(
      path: string,
      params: typeof GroupWindowParams | typeof TagWindowParams,
      reply: typeof GroupWindowsJson | typeof TagWindowsJson,
      targetOf: (p: P) => WindowTarget,
      json: (w: SharedWindows) => unknown,
      noun: string,
    ) => {
      app.get(
        path,
        {
          config: { permission: 'windows.read' },
          schema: {
            summary: `The maintenance windows set on a ${noun}`,
            tags: ['devices'],
            params,
            response: withErrors({ 200: reply }),
          },
        },
        async (request) => {
          refuseScoped(request, `windows on a ${noun}`);
          const target = targetOf(request.params as P);
          const w = await c.store.deviceWindows.getShared(target);
          if (!w) throw new FleetError('NOT_FOUND', `${described(target)} has no windows`);
          return json(w);
        },
      );

      app.put(
        path,
        {
          config: { permission: 'windows.write' },
          schema: {
            summary: `Set a ${noun}'s maintenance windows (for its devices without windows of their own)`,
            tags: ['devices'],
            params,
            body: DeviceWindowsBody,
            response: withErrors({ 200: reply }),
          },
          validatorCompiler: bodyChecked,
        },
        async (request) => {
          const windows = windowsOf(request.body);
          refuseScoped(request, `windows on a ${noun}`);
          const target = targetOf(request.params as P);
          const before = await c.store.deviceWindows.getShared(target);
          const actor = actorOf(operatorOf(request));
          const set = await c.store.deviceWindows.setShared(target, windows, actor, c.clock.now());
          auditChange(request, shown(before), shown(set));
          return json(set);
        },
      );

      app.delete(
        path,
        {
          config: { permission: 'windows.write' },
          schema: {
            summary: `Remove a ${noun}'s maintenance windows`,
            tags: ['devices'],
            params,
            response: withErrors({ 200: reply }),
          },
        },
        async (request) => {
          refuseScoped(request, `windows on a ${noun}`);
          const target = targetOf(request.params as P);
          const before = await c.store.deviceWindows.getShared(target);
          if (
            !before ||
            !(await c.store.deviceWindows.removeShared(target, actorOf(operatorOf(request)), c.clock.now()))
          ) {
            throw new FleetError('NOT_FOUND', `${described(target)} has no windows`);
          }
          auditChange(request, shown(before), null);
          return json(before);
        },
      );
    };

    routesFor<{ name: string }>(
      '/windows/groups/:name',
      GroupWindowParams,
      GroupWindowsJson,
      (p) => ({ kind: 'group', name: p.name }),
      groupWindowsJson,
      'group',
    );
    routesFor<{ key: string; value: string }>(
      '/windows/tags/:key/:value',
      TagWindowParams,
      TagWindowsJson,
      (p) => ({ kind: 'tag', key: p.key, value: p.value }),
      tagWindowsJson,
      'tag value',
    );

    app.get(
      '/windows/groups',
      {
        config: { permission: 'windows.read' },
        schema: {
          summary: 'Groups with maintenance windows, by name',
          tags: ['devices'],
          querystring: SharedWindowsListQuery,
          response: withErrors({ 200: GroupWindowsListReply }),
        },
      },
      async (request) => {
        refuseScoped(request, 'windows on groups');
        const limit = request.query.limit ?? 100;
        const page = await c.store.deviceWindows.listShared('group', {
          limit,
          ...(request.query.after === undefined ? {} : { after: request.query.after }),
        });
        const windows = page.map(groupWindowsJson);
        return { windows, next: page.length === limit ? windows[windows.length - 1]!.group : null };
      },
    );

    app.get(
      '/windows/tags',
      {
        config: { permission: 'windows.read' },
        schema: {
          summary: 'Tag values with maintenance windows, by key and value',
          tags: ['devices'],
          querystring: SharedWindowsListQuery,
          response: withErrors({ 200: TagWindowsListReply }),
        },
      },
      async (request) => {
        refuseScoped(request, 'windows on tag values');
        const limit = request.query.limit ?? 100;
        const page = await c.store.deviceWindows.listShared('tag', {
          limit,
          ...(request.query.after === undefined ? {} : { after: request.query.after }),
        });
        const windows = page.map(tagWindowsJson);
        const last = windows[windows.length - 1];
        return { windows, next: page.length === limit && last ? `${last.key}=${last.value}` : null };
      },
    );
  };
