/** The API devices call: enrollment and heartbeats. The heartbeat is FleetD's hottest path. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { checkTimeZone } from '../../core/device.js';
import { FleetError } from '../../core/errors.js';
import { withErrors } from '../../protocol/common.js';
import {
  CredentialReply,
  EnrollBody,
  HeartbeatBody,
  HeartbeatReply,
  heartbeatFromBody,
  pendingUpdateJson,
  Sha256Params,
  StatusReportBody,
  StatusReportReply,
  UpdateParams,
} from '../../protocol/device-api.js';
import { deviceCredential, hashSecret, splitDeviceCredential } from '../../registry/credentials.js';
import { authenticateDevice, bearer } from '../auth.js';
import { sendBlob } from '../blob-reply.js';
import { type ServerContext, timeContext } from '../context.js';

export const deviceApi =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.post(
      '/enroll',
      {
        schema: {
          summary: 'Self-register a device with an enrollment token; returns its own credential (shown once)',
          tags: ['device'],
          body: EnrollBody,
          response: withErrors({ 201: CredentialReply }),
        },
      },
      async (request, reply) => {
        const body = request.body;
        if (body.timezone !== undefined) checkTimeZone(body.timezone, 'timezone');
        const credential = deviceCredential(body.device_id);
        await c.store.enroll(
          {
            tokenHash: hashSecret(body.enrollment_token),
            credentialHash: hashSecret(splitDeviceCredential(credential)!.secret),
            device: {
              id: body.device_id,
              ...(body.name !== undefined ? { name: body.name } : {}),
              ...(body.hardware_type !== undefined ? { hardwareType: body.hardware_type } : {}),
              ...(body.firmware_version !== undefined ? { firmwareVersion: body.firmware_version } : {}),
              ...(body.timezone !== undefined ? { timezone: body.timezone } : {}),
              ...(body.tags !== undefined ? { tags: body.tags } : {}),
            },
          },
          timeContext(c),
        );
        return reply.status(201).send({ device_id: body.device_id, credential });
      },
    );

    app.post(
      '/heartbeat',
      {
        schema: {
          summary:
            'Report that the device is alive, with its firmware and telemetry; answers pending updates',
          tags: ['device'],
          security: [{ deviceCredential: [] }],
          body: HeartbeatBody,
          response: withErrors({ 200: HeartbeatReply }),
        },
      },
      async (request) => {
        // Authentication happens in the batch write itself: one database visit per batch, not two per heartbeat.
        const presented = splitDeviceCredential(bearer(request));
        if (!presented)
          throw new FleetError('UNAUTHENTICATED', 'the device credential is unknown, revoked or wrong');
        const body = request.body;
        if (body.device_id !== presented.deviceId) {
          throw new FleetError(
            'FORBIDDEN',
            `this credential belongs to ${presented.deviceId}; a device may only report for itself`,
          );
        }
        const { outcome, offers } = await c.heartbeats.submit({
          credentialHash: hashSecret(presented.secret),
          heartbeat: heartbeatFromBody(presented.deviceId, body),
        });
        if (!outcome.ok)
          throw new FleetError('UNAUTHENTICATED', 'the device credential is unknown, revoked or wrong');
        return { pending_updates: offers.map(pendingUpdateJson), next_heartbeat: c.heartbeatIntervalSec };
      },
    );

    app.post(
      '/updates/:id/status',
      {
        schema: {
          summary: 'Report the state of an update: idempotent, ordered by the device-side sequence number',
          tags: ['device'],
          security: [{ deviceCredential: [] }],
          params: UpdateParams,
          body: StatusReportBody,
          response: withErrors({ 200: StatusReportReply }),
        },
      },
      async (request) => {
        const deviceId = await authenticateDevice(c.store, request);
        const b = request.body;
        return c.reports.submit({
          deviceId,
          updateId: request.params.id,
          report: {
            seq: b.seq,
            state: b.state,
            progress: b.progress ?? undefined,
            error: b.error ?? undefined,
          },
        });
      },
    );

    app.get(
      '/artifacts/:sha256',
      {
        schema: {
          summary: 'Download an artifact assigned to this device (Range, ETag, If-Range for resuming)',
          tags: ['device'],
          security: [{ deviceCredential: [] }],
          params: Sha256Params,
        },
      },
      async (request, reply) => {
        const deviceId = await authenticateDevice(c.store, request);
        if (!(await c.store.updates.mayDownload(deviceId, request.params.sha256))) {
          throw new FleetError('FORBIDDEN', `no update in progress gives ${deviceId} this artifact`);
        }
        return sendBlob(c, request.params.sha256, request, reply);
      },
    );
  };
