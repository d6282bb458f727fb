/**
 * Agentless delivery (docs/agentless.md): an operator sets how the server reaches a device that runs no agent,
 * and reads the public key to install on SSH devices. The settings are checked whole before they are stored.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { checkDelivery, deliveryJson } from '../../core/delivery.js';
import { FleetError } from '../../core/errors.js';
import { withErrors } from '../../protocol/common.js';
import {
  type DeliveryBody,
  DeliveryJson,
  DeliveryKeyReply,
  DeviceDeliveryReply,
} from '../../protocol/delivery.js';
import { DeviceParams } from '../../protocol/operator-api.js';
import type { DeviceDelivery } from '../../store/delivery-store.js';
import { auditChange } from '../audit/audit-trail.js';
import { actorOf, operatorOf } from '../auth.js';
import type { ServerContext } from '../context.js';
import { mustSeeDevice } from '../scope.js';

const reply = (d: DeviceDelivery) => ({
  device_id: d.deviceId,
  delivery: deliveryJson(d.delivery) as DeliveryBody,
  updated_at: new Date(d.updatedAt).toISOString(),
});

/**
 * What the audit log keeps of a delivery: where it goes, not the commands it runs (they may carry credentials),
 * and a push URL without its query (a token may travel there).
 */
function deliveryShown(d: DeviceDelivery | undefined) {
  if (d === undefined) return null;
  const { delivery } = d;
  if (delivery.method === 'ssh') {
    return { method: delivery.method, host: delivery.host, port: delivery.port, user: delivery.user };
  }
  const url = new URL(delivery.url);
  return { method: delivery.method, url: `${url.origin}${url.pathname}` };
}

export const deliveryRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/devices/:id/delivery',
      {
        config: { permission: 'devices.read' },
        schema: {
          summary: 'How the server delivers updates to this device itself (agentless), if it does',
          tags: ['devices'],
          params: DeviceParams,
          response: withErrors({ 200: DeviceDeliveryReply }),
        },
      },
      async (request) => {
        await mustSeeDevice(c, request, request.params.id);
        const found = await c.store.delivery.get(request.params.id);
        if (!found)
          throw new FleetError('NOT_FOUND', `${request.params.id} runs an agent: no delivery is set`);
        return reply(found);
      },
    );

    app.put(
      '/devices/:id/delivery',
      {
        // The delivery names the commands the server runs on the device: remote execution, not a device edit.
        config: { permission: 'commands.run' },
        schema: {
          summary: 'Deliver updates to this device over SSH or by HTTP push instead of an agent',
          tags: ['devices'],
          params: DeviceParams,
          body: DeliveryJson,
          response: withErrors({ 200: DeviceDeliveryReply }),
        },
      },
      async (request) => {
        await mustSeeDevice(c, request, request.params.id);
        const delivery = checkDelivery(request.body);
        const before = await c.store.delivery.get(request.params.id);
        const set = await c.store.delivery.set(
          request.params.id,
          delivery,
          c.clock.now(),
          actorOf(operatorOf(request)),
        );
        auditChange(request, deliveryShown(before), deliveryShown(set));
        return reply(set);
      },
    );

    app.delete(
      '/devices/:id/delivery',
      {
        config: { permission: 'devices.write' },
        schema: {
          summary: 'Stop delivering to this device: it is expected to run an agent again',
          tags: ['devices'],
          params: DeviceParams,
          response: withErrors({ 204: Type.Null() }),
        },
      },
      async (request, res) => {
        await mustSeeDevice(c, request, request.params.id);
        const before = await c.store.delivery.get(request.params.id);
        const removed = await c.store.delivery.remove(
          request.params.id,
          c.clock.now(),
          actorOf(operatorOf(request)),
        );
        if (!removed) throw new FleetError('NOT_FOUND', `${request.params.id} has no delivery set`);
        auditChange(request, deliveryShown(before), null);
        return res.status(204).send(null);
      },
    );

    app.get(
      '/delivery/ssh-key',
      {
        config: { permission: 'devices.read' },
        schema: {
          summary: 'The public key the server signs in with on SSH devices (for their authorized_keys)',
          tags: ['devices'],
          response: withErrors({ 200: DeliveryKeyReply }),
        },
      },
      async () => ({ public_key: c.deliveryKey.publicKey() }),
    );
  };
