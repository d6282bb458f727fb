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
  PromoteConfigBody,
  ReleaseConfigBody,
  ReleaseConfigReply,
  SetConfigBody,
  SetConfigReply,
  StagedConfigJson,
  stagedAsDocumentJson,
  stagedConfigJson,
  stagedSummaryJson,
} from '../../protocol/config.js';
import { DeviceParams } from '../../protocol/operator-api.js';
import type { ConfigDocumentRecord, StagedConfigRecord } from '../../store/config-store.js';
import { auditChange } from '../audit/audit-trail.js';
import { actorOf, authenticateDevice, operatorOf } from '../auth.js';
import { type ServerContext, timeContext } from '../context.js';
import { principalOf } from '../principal.js';
import { mustSeeDevice } from '../scope.js';

/** A document another scope set is, to a scoped principal, not there. */
function visible<T extends { scope: string | null }>(
  request: FastifyRequest,
  doc: T | undefined,
): T | undefined {
  const scope = principalOf(request).scope;
  return doc === undefined || scope === null || doc.scope === scope ? doc : undefined;
}

/** What the audit log keeps of a document: its version, hash and target, never its content (it may hold secrets). */
function configShown(doc: ConfigDocumentRecord | StagedConfigRecord | undefined) {
  if (doc === undefined) return null;
  const { target } = doc;
  return {
    ...('stagedAt' in doc ? { staged: true } : {}),
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
            'Set a configuration document for every device, the devices of a filter or one device; a new version when it changed. With `staged`, the version is set aside: no device gets it until it is released to it or promoted',
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
        if (body.staged === true) {
          const before = visible(request, await c.store.config.staged(name));
          const { staged, changed } = await c.store.config.stage(
            { name, document, target, scope: principalOf(request).scope },
            timeContext(c),
            actorOf(operatorOf(request)),
          );
          auditChange(request, configShown(before), configShown(staged));
          return { document: stagedAsDocumentJson(staged), changed, staged: true };
        }
        const before = visible(request, await c.store.config.get(name));
        const { document: stored, changed } = await c.store.config.set(
          { name, document, target, scope: principalOf(request).scope },
          timeContext(c),
          actorOf(operatorOf(request)),
        );
        auditChange(request, configShown(before), configShown(stored));
        return { document: configDocumentJson(stored), changed, staged: false };
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
        const staged = await c.store.config.listStaged();
        return {
          documents: all.filter((d) => visible(request, d)).map(configSummaryJson),
          staged: staged.filter((d) => visible(request, d)).map(stagedSummaryJson),
        };
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

    const stagedOrFail = async (request: FastifyRequest, name: string) => {
      const staged = visible(request, await c.store.config.staged(name));
      if (!staged) throw new FleetError('NOT_FOUND', `configuration ${name} has no staged version`);
      return staged;
    };

    app.get(
      '/config/:name/staged',
      {
        config: { permission: 'config.read' },
        schema: {
          summary:
            "A document's staged version with its content, and what the devices it was released to reported",
          tags: ['config'],
          params: ConfigParams,
          response: withErrors({ 200: StagedConfigJson }),
        },
      },
      async (request) => stagedConfigJson(await stagedOrFail(request, request.params.name)),
    );

    app.post(
      '/config/:name/release',
      {
        config: { permission: 'config.write' },
        schema: {
          summary:
            'Release the staged version to more devices (those of a filter, one device, at most a count): they resolve it in place of the current version at once',
          tags: ['config'],
          params: ConfigParams,
          body: ReleaseConfigBody,
          response: withErrors({ 200: ReleaseConfigReply }),
        },
      },
      async (request) => {
        const { body } = request;
        const name = request.params.name;
        const filterText = body.filter?.trim() ?? '';
        if (filterText !== '' && body.device !== undefined) {
          throw new FleetError('VALIDATION', 'give a filter or a device, not both');
        }
        const filter = filterText === '' ? undefined : parseFilter(filterText);
        if (body.device !== undefined) await mustSeeDevice(c, request, body.device);
        const before = await stagedOrFail(request, name);
        const { released, staged } = await c.store.config.release(
          name,
          body.version,
          {
            ...(filter ? { filter } : {}),
            ...(body.device !== undefined ? { deviceId: body.device } : {}),
            ...(body.count !== undefined ? { count: body.count } : {}),
          },
          principalOf(request).scope,
          timeContext(c),
          actorOf(operatorOf(request)),
        );
        auditChange(request, { released: before.progress.released }, { released: staged.progress.released });
        return { released, staged: stagedConfigJson(staged) };
      },
    );

    app.post(
      '/config/:name/promote',
      {
        config: { permission: 'config.write' },
        schema: {
          summary: "Make the staged version the document's current version, for every device",
          tags: ['config'],
          params: ConfigParams,
          body: PromoteConfigBody,
          response: withErrors({ 200: ConfigDocumentJson }),
        },
      },
      async (request) => {
        const name = request.params.name;
        const staged = await stagedOrFail(request, name);
        const before = visible(request, await c.store.config.get(name));
        const promoted = await c.store.config.promote(
          name,
          request.body.version,
          principalOf(request).scope,
          timeContext(c),
          actorOf(operatorOf(request)),
        );
        auditChange(request, configShown(before ?? staged), configShown(promoted));
        return configDocumentJson(promoted);
      },
    );

    app.delete(
      '/config/:name/staged',
      {
        config: { permission: 'config.write' },
        schema: {
          summary: 'Drop the staged version: the devices it was released to go back to the current version',
          tags: ['config'],
          params: ConfigParams,
          response: withErrors({ 200: StagedConfigJson }),
        },
      },
      async (request) => {
        const name = request.params.name;
        await stagedOrFail(request, name);
        const dropped = await c.store.config.unstage(
          name,
          principalOf(request).scope,
          timeContext(c),
          actorOf(operatorOf(request)),
        );
        if (!dropped) throw new FleetError('NOT_FOUND', `configuration ${name} has no staged version`);
        auditChange(request, configShown(dropped), null);
        return stagedConfigJson(dropped);
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
