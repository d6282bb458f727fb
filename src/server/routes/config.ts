/**
 * Remote configuration (docs/configuration.md): the operator sets, lists, shows and removes documents and reads a
 * device's desired configuration next to what it reported; a device posts what applying one came to. Delivery
 * rides the heartbeat answer (routes/device-api.ts). A scoped principal's documents apply within its scope, and
 * it sees and changes only those.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { type ConfigTarget, checkConfigDocument, checkConfigName } from '../../core/config-document.js';
import { FleetError } from '../../core/errors.js';
import { parseFilter } from '../../core/filter/index.js';
import { withErrors } from '../../protocol/common.js';
import {
  ConfigDocumentJson,
  ConfigList,
  ConfigParams,
  ConfigStatusBody,
  ConfigStatusReply,
  ConfigSummary,
  configDocumentJson,
  configSummaryJson,
  DeviceConfigJson,
  deviceConfigJson,
  SetConfigBody,
  SetConfigReply,
} from '../../protocol/config.js';
import { DeviceParams } from '../../protocol/operator-api.js';
import type { ConfigDocumentRecord } from '../../store/config-store.js';
import { auditChange } from '../audit/audit-trail.js';
import { actorOf, authenticateDevice, operatorOf } from '../auth.js';
import { type ServerContext, timeContext } from '../context.js';
import { principalOf } from '../principal.js';
import { mustSeeDevice } from '../scope.js';

/** A document another scope set is, to a scoped principal, not there. */
function visible(
  request: FastifyRequest,
  doc: ConfigDocumentRecord | undefined,
): ConfigDocumentRecord | undefined {
  const scope = principalOf(request).scope;
  return doc === undefined || scope === null || doc.scope === scope ? doc : undefined;
}

/** What the audit log keeps of a document: its version, hash and target, never its content (it may hold secrets). */
function configShown(doc: ConfigDocumentRecord | undefined) {
  if (doc === undefined) return null;
  const { target } = doc;
  return {
    version: doc.version,
    hash: doc.hash,
    target: target.kind,
    ...(target.kind === 'filter' ? { filter: target.filter } : {}),
    ...(target.kind === 'device' ? { device_id: target.deviceId } : {}),
  };
}

export const configRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.put(
      '/config/:name',
      {
        config: { permission: 'config.write' },
        schema: {
          summary:
            'Set a configuration document for every device, the devices of a filter or one device; a new version when it changed',
          tags: ['config'],
          params: ConfigParams,
          body: SetConfigBody,
          response: withErrors({ 200: SetConfigReply }),
        },
      },
      async (request) => {
        const { body } = request;
        // Everything is checked before the first write: the name, the document, the target.
        const name = checkConfigName(request.params.name);
        const document = checkConfigDocument(body.document);
        const filterText = body.filter?.trim() ?? '';
        if (filterText !== '' && body.device !== undefined) {
          throw new FleetError('VALIDATION', 'give a filter or a device, not both');
        }
        if (filterText !== '') parseFilter(filterText);
        if (body.device !== undefined) await mustSeeDevice(c, request, body.device);
        const target: ConfigTarget =
          body.device !== undefined
            ? { kind: 'device', deviceId: body.device }
            : filterText !== ''
              ? { kind: 'filter', filter: filterText }
              : { kind: 'fleet' };
        const before = visible(request, await c.store.config.get(name));
        const { document: stored, changed } = await c.store.config.set(
          { name, document, target, scope: principalOf(request).scope },
          timeContext(c),
          actorOf(operatorOf(request)),
        );
        auditChange(request, configShown(before), configShown(stored));
        return { document: configDocumentJson(stored), changed };
      },
    );

    app.get(
      '/config',
      {
        config: { permission: 'config.read' },
        schema: {
          summary: 'The configuration documents, by name (without their content)',
          tags: ['config'],
          response: withErrors({ 200: ConfigList }),
        },
      },
      async (request) => {
        const all = await c.store.config.list();
        return { documents: all.filter((d) => visible(request, d)).map(configSummaryJson) };
      },
    );

    app.get(
      '/config/:name',
      {
        config: { permission: 'config.read' },
        schema: {
          summary: 'A configuration document with its content',
          tags: ['config'],
          params: ConfigParams,
          response: withErrors({ 200: ConfigDocumentJson }),
        },
      },
      async (request) => {
        const doc = visible(request, await c.store.config.get(request.params.name));
        if (!doc) throw new FleetError('NOT_FOUND', `no configuration ${request.params.name}`);
        return configDocumentJson(doc);
      },
    );

    app.delete(
      '/config/:name',
      {
        config: { permission: 'config.write' },
        schema: {
          summary: 'Remove a configuration document; the devices it applied to are resolved again',
          tags: ['config'],
          params: ConfigParams,
          response: withErrors({ 200: ConfigSummary }),
        },
      },
      async (request) => {
        const name = request.params.name;
        const scope = principalOf(request).scope;
        const before = visible(request, await c.store.config.get(name));
        if (!before) throw new FleetError('NOT_FOUND', `no configuration ${name}`);
        const removed = await c.store.config.remove(
          name,
          scope,
          timeContext(c),
          actorOf(operatorOf(request)),
        );
        if (!removed) throw new FleetError('NOT_FOUND', `no configuration ${name}`);
        auditChange(request, configShown(removed), null);
        return configSummaryJson(removed);
      },
    );

    app.get(
      '/devices/:id/config',
      {
        config: { permission: 'config.read' },
        schema: {
          summary: "A device's desired configuration next to what it reported, and whether it drifts",
          tags: ['config'],
          params: DeviceParams,
          response: withErrors({ 200: DeviceConfigJson }),
        },
      },
      async (request) => {
        const id = request.params.id;
        await mustSeeDevice(c, request, id);
        const state = await c.store.config.ofDevice(id, timeContext(c));
        if (!state) throw new FleetError('DEVICE_NOT_FOUND', `device ${id} does not exist`);
        return deviceConfigJson(state);
      },
    );
  };

export const deviceConfigApi =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.post(
      '/config/status',
      {
        schema: {
          summary: 'Report applying the desired configuration (applied or failed, with the hook output tail)',
          tags: ['device'],
          security: [{ deviceCredential: [] }],
          body: ConfigStatusBody,
          response: withErrors({ 200: ConfigStatusReply }),
        },
      },
      async (request) => {
        const deviceId = await authenticateDevice(c, request);
        const b = request.body;
        const state = await c.store.config.report(
          deviceId,
          {
            version: b.version,
            hash: b.hash,
            result: b.result,
            ...(b.output === undefined ? {} : { output: b.output }),
          },
          timeContext(c),
        );
        return deviceConfigJson(state);
      },
    );
  };
