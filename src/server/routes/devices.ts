/** Operator API for the device registry. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { Device } from '../../core/device.js';
import { FleetError } from '../../core/errors.js';
import { parseFilter } from '../../core/filter/index.js';
import { importRecords, preauthorizedIds } from '../../core/fleet-import.js';
import { AdmissionBody, AdmissionReply, WaitingQuery, WaitingReply } from '../../protocol/admission.js';
import { iso, withErrors } from '../../protocol/common.js';
import { CredentialReply } from '../../protocol/device-api.js';
import {
  DeviceCertificateList,
  DeviceListQuery,
  DevicePage,
  DeviceParams,
  deviceJson,
  FilterQuery,
  ImportBody,
  RevokedCertificates,
} from '../../protocol/operator-api.js';
import { deviceCredential, hashSecret, splitDeviceCredential } from '../../registry/credentials.js';
import { AUDITED_DEVICES, auditChange } from '../audit/audit-trail.js';
import { actorOf, operatorOf } from '../auth.js';
import { type ServerContext, timeContext } from '../context.js';
import { principalOf } from '../principal.js';
import { idsInScope, mustSeeDevice, refuseScoped, scopedFilter } from '../scope.js';

/** An import of 50,000 devices is about 20 MB of JSON; the CLI sends larger files in parts. */
const IMPORT_BODY_LIMIT = 64 * 1024 * 1024;

export const deviceRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    /**
     * The configuration state the device JSON shows, in one query for a whole page (never one per device); left
     * out for a principal without `config.read`, as its document names are configuration to read.
     */
    const configStates = async (request: FastifyRequest, devices: readonly Device[]) =>
      principalOf(request).permissions.has('config.read')
        ? c.store.config.statesOf(devices.map((d) => d.id))
        : undefined;

    app.get(
      '/devices',
      {
        config: { permission: 'devices.read' },
        schema: {
          summary: 'List devices matching a filter, with keyset pagination',
          tags: ['devices'],
          querystring: DeviceListQuery,
          response: withErrors({
            200: DevicePage,
          }),
        },
      },
      async (request) => {
        const q = request.query;
        const page = await c.store.listDevices({
          ...timeContext(c),
          filter: scopedFilter(request, parseFilter(q.filter ?? '')),
          sort: q.sort ?? 'id',
          descending: q.order === 'desc',
          cursor: q.cursor,
          limit: q.limit ?? 100,
        });
        const configs = await configStates(request, page.devices);
        return {
          devices: page.devices.map((d) => deviceJson(d, configs && { of: configs.get(d.id) })),
          next_cursor: page.nextCursor,
        };
      },
    );

    app.get(
      '/devices/count',
      {
        config: { permission: 'devices.read' },
        schema: {
          summary: 'Count devices matching a filter (also validates the expression)',
          tags: ['devices'],
          querystring: FilterQuery,
          response: withErrors({ 200: Type.Object({ count: Type.Integer() }) }),
        },
      },
      async (request) => ({
        count: await c.store.countDevices(
          scopedFilter(request, parseFilter(request.query.filter ?? '')),
          timeContext(c),
        ),
      }),
    );

    app.get(
      '/devices/:id',
      {
        config: { permission: 'devices.read' },
        schema: {
          summary: 'One device',
          tags: ['devices'],
          params: DeviceParams,
          response: withErrors({ 200: Type.Ref('Device') }),
        },
      },
      async (request) => {
        await mustSeeDevice(c, request, request.params.id);
        const device = await c.store.getDevice(request.params.id, timeContext(c));
        if (!device)
          throw new FleetError('DEVICE_NOT_FOUND', `device ${request.params.id} is not registered`);
        const configs = await configStates(request, [device]);
        return deviceJson(device, configs && { of: configs.get(device.id) });
      },
    );

    app.post(
      '/devices/import',
      {
        config: { permission: 'devices.write' },
        bodyLimit: IMPORT_BODY_LIMIT,
        schema: {
          summary: 'Bulk import or update devices; timestamps are shifted when the file gives its own `now`',
          tags: ['devices'],
          body: ImportBody,
          response: withErrors({ 200: Type.Object({ created: Type.Integer(), updated: Type.Integer() }) }),
        },
      },
      async (request) => {
        const operator = operatorOf(request);
        refuseScoped(request, 'an import');
        const ctx = timeContext(c);
        const records = importRecords(request.body, ctx.now);
        const result = await c.store.importDevices(
          records,
          ctx,
          actorOf(operator),
          preauthorizedIds(request.body),
        );
        // Counts and the first ids: an import may name thousands of devices.
        auditChange(request, null, {
          created: result.created,
          updated: result.updated,
          devices: records.slice(0, AUDITED_DEVICES).map((r) => r.id),
        });
        return result;
      },
    );

    app.get(
      '/devices/pending',
      {
        config: { permission: 'devices.read' },
        schema: {
          summary:
            'Devices waiting for approval (or rejected), oldest request first, with their key fingerprints',
          tags: ['devices'],
          querystring: WaitingQuery,
          response: withErrors({ 200: WaitingReply }),
        },
      },
      async (request) => {
        const q = request.query;
        const waiting = await c.store.admission.waiting(
          q.limit ?? 100,
          timeContext(c),
          q.admission ?? 'pending',
        );
        const visible = await idsInScope(
          c,
          request,
          waiting.map((w) => w.device.id),
        );
        return {
          devices: waiting
            .filter((w) => visible.has(w.device.id))
            .map((w) => ({
              device: deviceJson(w.device),
              key_fingerprint: w.keyFingerprint,
              requested_at: iso(w.requestedAt)!,
            })),
        };
      },
    );

    for (const decision of ['accept', 'reject'] as const) {
      app.post(
        `/devices/${decision}`,
        {
          config: { permission: 'devices.write' },
          schema: {
            summary:
              decision === 'accept'
                ? 'Accept devices waiting for approval (or rejected): each completes its enrollment when it asks again'
                : 'Reject devices waiting for approval: they are refused when they ask again',
            tags: ['devices'],
            body: AdmissionBody,
            response: withErrors({ 200: AdmissionReply }),
          },
        },
        async (request) => {
          const operator = operatorOf(request);
          const body = request.body;
          // The filter is parsed before anything is written (FILTER_SYNTAX).
          const filter = 'filter' in body ? parseFilter(body.filter) : undefined;
          if ('filter' in body && filter === undefined) {
            throw new FleetError('VALIDATION', 'filter: an empty filter would take every device; name some');
          }
          const ids = 'ids' in body ? body.ids : [];
          const selection =
            filter === undefined
              ? { ids: [...(await idsInScope(c, request, ids))] }
              : { filter: scopedFilter(request, filter)! };
          const results = await c.store.admission.decide(
            decision,
            selection,
            timeContext(c),
            actorOf(operator),
          );
          const moved = results.filter((r) => r.ok);
          auditChange(request, null, {
            admission: decision === 'accept' ? 'accepted' : 'rejected',
            moved: moved.length,
            devices: moved.slice(0, AUDITED_DEVICES).map((r) => r.id),
          });
          return { results, moved: moved.length };
        },
      );
    }

    app.post(
      '/devices/:id/decommission',
      {
        config: { permission: 'devices.write' },
        schema: {
          summary: 'Retire a device: its credential and certificates are revoked, its history kept',
          tags: ['devices'],
          params: DeviceParams,
          response: withErrors({ 200: Type.Ref('Device') }),
        },
      },
      async (request) => {
        const operator = operatorOf(request);
        await mustSeeDevice(c, request, request.params.id);
        const before = await c.store.getDevice(request.params.id, timeContext(c));
        const device = await c.store.decommissionDevice(request.params.id, timeContext(c), actorOf(operator));
        auditChange(request, before && { status: before.status }, { status: device.status });
        return deviceJson(device);
      },
    );

    app.get(
      '/devices/:id/certificates',
      {
        config: { permission: 'devices.read' },
        schema: {
          summary: "A device's certificates, newest first, revoked ones included",
          tags: ['devices'],
          params: DeviceParams,
          response: withErrors({ 200: DeviceCertificateList }),
        },
      },
      async (request) => {
        const id = request.params.id;
        await mustSeeDevice(c, request, id);
        if (!(await c.store.getDevice(id, timeContext(c)))) {
          throw new FleetError('DEVICE_NOT_FOUND', `device ${id} is not registered`);
        }
        const certificates = await c.store.certificates.ofDevice(id);
        return {
          certificates: certificates.map((k) => ({
            serial: k.serial,
            fingerprint: k.fingerprint,
            issuer: k.issuer,
            not_before: iso(k.notBefore)!,
            not_after: iso(k.notAfter)!,
            issued_at: iso(k.issuedAt)!,
            revoked_at: iso(k.revokedAt),
          })),
        };
      },
    );

    app.post(
      '/devices/:id/revoke-certificates',
      {
        config: { permission: 'devices.write' },
        schema: {
          summary:
            'Revoke every certificate of a device: refused at once on every listener and replica, listed in the CRL',
          tags: ['devices'],
          params: DeviceParams,
          response: withErrors({ 200: RevokedCertificates }),
        },
      },
      async (request) => {
        const operator = operatorOf(request);
        const id = request.params.id;
        await mustSeeDevice(c, request, id);
        const revoked = await c.store.certificates.revokeDevice(id, c.clock.now(), actorOf(operator));
        auditChange(request, null, { revoked });
        return { device_id: id, revoked };
      },
    );

    app.post(
      '/devices/:id/credential',
      {
        config: { permission: 'devices.write' },
        schema: {
          summary: 'Issue a device a new credential (replacing any old one); shown once',
          tags: ['devices'],
          params: DeviceParams,
          response: withErrors({ 201: CredentialReply }),
        },
      },
      async (request, reply) => {
        const operator = operatorOf(request);
        await mustSeeDevice(c, request, request.params.id);
        const credential = deviceCredential(request.params.id);
        await c.store.setCredential(
          request.params.id,
          hashSecret(splitDeviceCredential(credential)!.secret),
          timeContext(c),
          actorOf(operator),
        );
        return reply.status(201).send({ device_id: request.params.id, credential });
      },
    );
  };
