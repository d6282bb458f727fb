/**
 * The API devices call: enrollment (with a CSR: a certificate), certificate renewal, heartbeats, reports and
 * downloads. The heartbeat is FleetD's hottest path.
 */

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { nextHeartbeatSec } from '../../core/connectivity.js';
import { checkTimeZone } from '../../core/device.js';
import { FleetError } from '../../core/errors.js';
import { deviceCommandJson } from '../../protocol/commands.js';
import { withErrors } from '../../protocol/common.js';
import { configOfferJson } from '../../protocol/config.js';
import {
  AdmissionPendingReply,
  CertificateReply,
  EnrollBody,
  EnrollReply,
  HeartbeatBody,
  HeartbeatReply,
  heartbeatFromBody,
  pendingUpdateJson,
  RenewBody,
  Sha256Params,
  StatusReportBody,
  StatusReportReply,
  UpdateParams,
} from '../../protocol/device-api.js';
import { deviceCredential, hashSecret, splitDeviceCredential } from '../../registry/credentials.js';
import { authenticateDevice, deviceProof, mustActAsItself, refuseCertificate } from '../auth.js';
import { sendBlob } from '../blob-reply.js';
import { type ServerContext, timeContext } from '../context.js';
import { withDeltas } from '../delta-offers.js';
import type { DeviceCertificate } from '../device-certificates.js';
import { withSignedUrls } from '../signed-artifact-urls.js';

const certificateJson = (issued: DeviceCertificate) => ({
  certificate: issued.certificatePem,
  ca_certificate: issued.caCertificatePem,
  expires_at: new Date(issued.record.notAfter).toISOString(),
});

/** How long a device waiting for approval is asked to wait before asking again (the agent backs off further). */
export const ADMISSION_RETRY_SEC = 60;

export const deviceApi =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.post(
      '/enroll',
      {
        schema: {
          summary:
            'Self-register a device with an enrollment token; with a CSR returns its certificate, without one its ' +
            'own credential (shown once). Without a token (--enrollment approve) the device waits for approval (202)',
          tags: ['device'],
          body: EnrollBody,
          response: withErrors({ 201: EnrollReply, 202: AdmissionPendingReply }),
        },
      },
      async (request, reply) => {
        const body = request.body;
        if (body.timezone !== undefined) checkTimeZone(body.timezone, 'timezone');
        if (body.csr === undefined && c.deviceAuth === 'mtls') {
          throw new FleetError(
            'CERTIFICATE_REQUIRED',
            'this server enrolls devices by certificate only (--device-auth mtls): send a "csr" (PEM, CN = device id)',
          );
        }
        if (body.enrollment_token === undefined && c.enrollment !== 'approve') {
          throw new FleetError(
            'ENROLLMENT_INVALID',
            'an "enrollment_token" is required: this server does not queue devices for approval',
          );
        }
        if (
          body.enrollment_token === undefined &&
          body.csr === undefined &&
          body.request_secret === undefined
        ) {
          throw new FleetError(
            'VALIDATION',
            'without an enrollment token, send a "csr" or a "request_secret" (32+ random characters you keep): ' +
              'asking again with it proves you are the device that asked first',
          );
        }
        // The CSR is checked (and signed) before anything is written; the certificate is recorded with the device.
        const issued =
          body.csr === undefined ? undefined : await c.certificates.issue(body.csr, body.device_id);
        const credential = issued ? undefined : deviceCredential(body.device_id);
        const grant = {
          credentialHash:
            credential === undefined ? null : hashSecret(splitDeviceCredential(credential)!.secret),
          certificate: issued?.record,
          device: {
            id: body.device_id,
            ...(body.name !== undefined ? { name: body.name } : {}),
            ...(body.hardware_type !== undefined ? { hardwareType: body.hardware_type } : {}),
            ...(body.firmware_version !== undefined ? { firmwareVersion: body.firmware_version } : {}),
            ...(body.timezone !== undefined ? { timezone: body.timezone } : {}),
            ...(body.tags !== undefined ? { tags: body.tags } : {}),
          },
        };
        if (body.enrollment_token === undefined) {
          // The approval queue: the CSR's key, or else the device's own secret, is what a later request must repeat.
          const outcome = await c.store.admission.request(
            { ...grant, keyFingerprint: issued?.keyFingerprint ?? hashSecret(body.request_secret!) },
            timeContext(c),
          );
          if (outcome.admission === 'pending') {
            return reply.status(202).send({
              device_id: body.device_id,
              admission: 'pending',
              message:
                'waiting for an operator to accept this device; ask again later with the same ' +
                (issued ? 'key' : 'request_secret'),
              retry_after: ADMISSION_RETRY_SEC,
            });
          }
        } else {
          await c.store.enroll({ ...grant, tokenHash: hashSecret(body.enrollment_token) }, timeContext(c));
        }
        return reply
          .status(201)
          .send(
            issued
              ? { device_id: body.device_id, ...certificateJson(issued) }
              : { device_id: body.device_id, credential: credential! },
          );
      },
    );

    app.post(
      '/certificate',
      {
        schema: {
          summary:
            'Renew the device certificate from a new CSR; the current certificate keeps working until it expires',
          tags: ['device'],
          security: [{ deviceCredential: [] }],
          body: RenewBody,
          response: withErrors({ 200: CertificateReply }),
        },
      },
      async (request) => {
        const deviceId = await authenticateDevice(c, request);
        const issued = await c.certificates.issue(request.body.csr, deviceId);
        await c.store.certificates.record(issued.record, `device:${deviceId}`);
        return certificateJson(issued);
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
        // Authentication happens in the batch write itself: one database visit per batch, not two per heartbeat,
        // and a revoked certificate or credential is refused from the next batch on, on every replica.
        const proof = await deviceProof(c, request);
        const body = request.body;
        await mustActAsItself(c, request, proof, body.device_id);
        const heartbeat = heartbeatFromBody(body.device_id, body);
        const { outcome, offers, commands, config } = await c.heartbeats.submit(
          proof.method === 'certificate'
            ? { certificateFingerprint: proof.fingerprint, heartbeat }
            : { credentialHash: hashSecret(proof.secret), heartbeat },
        );
        if (!outcome.ok) {
          if (proof.method === 'certificate') return refuseCertificate(c, request);
          throw new FleetError('UNAUTHENTICATED', 'the device credential is unknown, revoked or wrong');
        }
        const full = withSignedUrls(c.signedUrls, c.clock.now(), offers.map(pendingUpdateJson));
        const pending = await withDeltas(c, body.firmware_version, offers, full);
        return {
          pending_updates: pending,
          ...(commands.length > 0 ? { commands: commands.map(deviceCommandJson) } : {}),
          ...(config ? { config: configOfferJson(config) } : {}),
          next_heartbeat: nextHeartbeatSec(outcome.heartbeatIntervalMs, c.heartbeatIntervalSec),
        };
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
        const deviceId = await authenticateDevice(c, request);
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
        const deviceId = await authenticateDevice(c, request);
        const grant = await c.store.updates.downloadGrant(deviceId, request.params.sha256);
        if (!grant)
          throw new FleetError('FORBIDDEN', `no update in progress gives ${deviceId} this artifact`);
        return sendBlob(c, request.params.sha256, request, reply, undefined, grant.rateLimit);
      },
    );
  };
