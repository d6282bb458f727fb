/**
 * Connectivity classes (docs/connectivity.md): heartbeat interval and offline/abandoned thresholds per class of
 * devices, listed by anyone who reads the fleet and set or removed by an admin (`connectivity.write`).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import {
  type ConnectivityClass,
  type ConnectivityMatch,
  checkConnectivityClass,
  MAX_CONNECTIVITY_CLASSES,
} from '../../core/connectivity.js';
import { parseDuration } from '../../core/duration.js';
import { FleetError } from '../../core/errors.js';
import { withErrors } from '../../protocol/common.js';
import {
  ConnectivityClassBody,
  ConnectivityClassJson,
  ConnectivityClassList,
  ConnectivityClassParams,
  connectivityClassJson,
} from '../../protocol/connectivity.js';
import { auditChange } from '../audit/audit-trail.js';
import { actorOf, operatorOf } from '../auth.js';
import { type ServerContext, timeContext } from '../context.js';
import { refuseScoped } from '../scope.js';

const MAX_MS = 366 * 86_400_000;

function matchOf(match: ConnectivityClassBody['match']): ConnectivityMatch {
  if ('hardware' in match) return { kind: 'hardware', hardware: match.hardware };
  if ('tag' in match) return { kind: 'tag', key: match.tag.key, value: match.tag.value };
  return { kind: 'group', group: match.group };
}

/** The body as a class, every rule checked (durations, their order, the name) before anything is written. */
function classOf(name: string, body: ConnectivityClassBody): ConnectivityClass {
  const c: ConnectivityClass = {
    name,
    match: matchOf(body.match),
    heartbeatIntervalMs: parseDuration(body.heartbeat_interval, 'heartbeat_interval', MAX_MS),
    offlineAfterMs: parseDuration(body.offline_after, 'offline_after', MAX_MS),
    abandonedAfterMs: parseDuration(body.abandoned_after, 'abandoned_after', MAX_MS),
    priority: body.priority ?? 0,
  };
  checkConnectivityClass(c);
  return c;
}

export const connectivityRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/connectivity-classes',
      {
        config: { permission: 'connectivity.read' },
        schema: {
          summary: 'Connectivity classes in precedence order, with the devices in each',
          tags: ['devices'],
          response: withErrors({ 200: ConnectivityClassList }),
        },
      },
      async () => ({ classes: (await c.store.connectivity.list()).map(connectivityClassJson) }),
    );

    app.get(
      '/connectivity-classes/:name',
      {
        config: { permission: 'connectivity.read' },
        schema: {
          summary: 'One connectivity class',
          tags: ['devices'],
          params: ConnectivityClassParams,
          response: withErrors({ 200: ConnectivityClassJson }),
        },
      },
      async (request) => {
        const found = await c.store.connectivity.get(request.params.name);
        if (!found)
          throw new FleetError('NOT_FOUND', `connectivity class ${request.params.name} does not exist`);
        return connectivityClassJson(found);
      },
    );

    app.put(
      '/connectivity-classes/:name',
      {
        config: { permission: 'connectivity.write' },
        schema: {
          summary:
            'Create or replace a connectivity class: its devices are asked to heartbeat at its interval and their status uses its thresholds',
          tags: ['devices'],
          params: ConnectivityClassParams,
          body: ConnectivityClassBody,
          response: withErrors({ 200: ConnectivityClassJson, 201: ConnectivityClassJson }),
        },
      },
      async (request, reply) => {
        refuseScoped(request, 'setting a connectivity class');
        const wanted = classOf(request.params.name, request.body);
        const before = await c.store.connectivity.get(wanted.name);
        if (
          !before &&
          (await c.store.connectivity.list({ counts: false })).length >= MAX_CONNECTIVITY_CLASSES
        ) {
          throw new FleetError(
            'VALIDATION',
            `at most ${MAX_CONNECTIVITY_CLASSES} connectivity classes; remove one with fleetd connectivity rm`,
            { field: 'name' },
          );
        }
        if (wanted.match.kind === 'group' && !(await c.store.groups.get(wanted.match.group))) {
          throw new FleetError(
            'VALIDATION',
            `match.group: group ${wanted.match.group} does not exist; fleetd groups ls lists them`,
            { field: 'match.group' },
          );
        }
        const set = await c.store.connectivity.set(wanted, actorOf(operatorOf(request)), timeContext(c));
        auditChange(request, before ? connectivityClassJson(before) : null, connectivityClassJson(set.class));
        return reply.status(set.created ? 201 : 200).send(connectivityClassJson(set.class));
      },
    );

    app.delete(
      '/connectivity-classes/:name',
      {
        config: { permission: 'connectivity.write' },
        schema: {
          summary:
            'Remove a connectivity class: its devices go back to the server-wide thresholds or another class',
          tags: ['devices'],
          params: ConnectivityClassParams,
          response: withErrors({ 200: Type.Object({ deleted: Type.String() }) }),
        },
      },
      async (request) => {
        refuseScoped(request, 'removing a connectivity class');
        const name = request.params.name;
        if (!(await c.store.connectivity.remove(name, actorOf(operatorOf(request)), timeContext(c)))) {
          throw new FleetError('NOT_FOUND', `connectivity class ${name} does not exist`);
        }
        auditChange(request, { name }, null);
        return { deleted: name };
      },
    );
  };
