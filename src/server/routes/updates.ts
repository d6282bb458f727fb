/** Operator API for device updates: assign a release to explicit devices, list and cancel updates. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { FleetError } from '../../core/errors.js';
import { DeviceId, withErrors } from '../../protocol/common.js';
import { UpdateParams } from '../../protocol/device-api.js';
import { UpdateJson } from '../../protocol/releases.js';
import { AUDITED_DEVICES, auditChange } from '../audit/audit-trail.js';
import { actorOf, operatorOf } from '../auth.js';
import { type ServerContext, timeContext } from '../context.js';
import { updateJson } from '../json.js';
import { principalOf } from '../principal.js';
import { idsInScope, ofVisibleDevices } from '../scope.js';
import { findRelease } from './artifacts.js';

const AssignBody = Type.Object(
  {
    release: Type.String({ maxLength: 256, description: 'name@version or a release id' }),
    devices: Type.Array(DeviceId, { minItems: 1, maxItems: 10_000 }),
    action: Type.Optional(
      Type.Union([Type.Literal('install'), Type.Literal('download_only'), Type.Literal('switch')]),
    ),
  },
  { additionalProperties: false },
);

const UpdatesQuery = Type.Object(
  {
    device: Type.Optional(Type.String({ maxLength: 128 })),
    release: Type.Optional(Type.String({ maxLength: 256 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  },
  { additionalProperties: false },
);

export const updateRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.post(
      '/updates/assign',
      {
        config: { permission: 'rollouts.create' },
        schema: {
          summary: 'Assign a release to explicit devices (they receive it on their next heartbeat)',
          tags: ['updates'],
          body: AssignBody,
          response: withErrors({
            200: Type.Object({
              assigned: Type.Array(UpdateJson),
              skipped: Type.Array(Type.Object({ device_id: Type.String(), reason: Type.String() })),
            }),
          }),
        },
      },
      async (request) => {
        const release = await findRelease(c, request.body.release);
        const visible = await idsInScope(c, request, request.body.devices);
        const outside = request.body.devices.filter((id) => !visible.has(id));
        if (outside.length > 0) {
          throw new FleetError(
            'FORBIDDEN',
            `${outside.length} device(s) are outside your scope "${principalOf(request).scope}": ${outside.slice(0, 5).join(', ')}`,
            { outside: outside.length },
          );
        }
        const result = await c.store.updates.assign(
          request.body.devices,
          release.id,
          { action: request.body.action ?? 'install' },
          timeContext(c),
          actorOf(operatorOf(request)),
        );
        auditChange(request, null, {
          release: `${release.name}@${release.version}`,
          action: request.body.action ?? 'install',
          assigned: result.assigned.length,
          skipped: result.skipped.length,
          devices: result.assigned.slice(0, AUDITED_DEVICES).map((u) => u.deviceId),
        });
        return {
          assigned: result.assigned.map(updateJson),
          skipped: result.skipped.map((s) => ({ device_id: s.deviceId, reason: s.reason })),
        };
      },
    );

    app.get(
      '/updates',
      {
        config: { permission: 'rollouts.read' },
        schema: {
          summary: 'Device updates, newest first, by device or release',
          tags: ['updates'],
          querystring: UpdatesQuery,
          response: withErrors({ 200: Type.Object({ updates: Type.Array(UpdateJson) }) }),
        },
      },
      async (request) => {
        const q = request.query;
        const releaseId = q.release === undefined ? undefined : (await findRelease(c, q.release)).id;
        const updates = await c.store.updates.list({
          limit: q.limit ?? 100,
          ...(q.device !== undefined ? { deviceId: q.device } : {}),
          ...(releaseId !== undefined ? { releaseId } : {}),
        });
        return { updates: (await ofVisibleDevices(c, request, updates)).map(updateJson) };
      },
    );

    app.get(
      '/updates/:id',
      {
        config: { permission: 'rollouts.read' },
        schema: {
          summary: 'One device update',
          tags: ['updates'],
          params: UpdateParams,
          response: withErrors({ 200: UpdateJson }),
        },
      },
      async (request) => {
        const found = await c.store.updates.get(request.params.id);
        const [update] = found ? await ofVisibleDevices(c, request, [found]) : [];
        if (!update) throw new FleetError('NOT_FOUND', `update ${request.params.id} does not exist`);
        return updateJson(update);
      },
    );

    app.post(
      '/updates/:id/cancel',
      {
        config: { permission: 'rollouts.control' },
        schema: {
          summary: 'Cancel a device update that has not started installing',
          tags: ['updates'],
          params: UpdateParams,
          response: withErrors({ 200: UpdateJson }),
        },
      },
      async (request) => {
        const found = await c.store.updates.get(request.params.id);
        // An update of a device outside the scope is as unknown as the device; an unknown one the store refuses.
        if (found && (await ofVisibleDevices(c, request, [found])).length === 0) {
          throw new FleetError('NOT_FOUND', `update ${request.params.id} does not exist`);
        }
        const update = await c.store.updates.cancel(
          request.params.id,
          timeContext(c),
          actorOf(operatorOf(request)),
        );
        auditChange(request, found && { state: found.state }, { state: update.state });
        return updateJson(update);
      },
    );
  };
