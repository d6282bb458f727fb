/**
 * The hawkBit DDI API under `/{tenant}/controller/v1/{controllerId}`, for devices running SWUpdate's suricatta
 * unmodified (docs/hawkbit-ddi.md). Another edge over the same device side as FleetD's own API: a base poll is
 * a heartbeat (the same batcher, the same offer), a feedback is a status report, a download is the same
 * resumable blob. SWUpdate counts only 200 (and 206) as success and sends anything else again, so every write
 * it makes is answered 200 once authenticated, a feedback that moves nothing included.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { type TSchema, Type } from 'typebox';
import { BlobDigestCache } from '../../artifacts/blob-digests.js';
import { nextHeartbeatSec } from '../../core/connectivity.js';
import { feedbackMeaning } from '../../core/ddi-feedback.js';
import { FleetError, isFleetError } from '../../core/errors.js';
import { withReportedAttributes } from '../../core/tag-edit.js';
import { FINAL_STATES, isAllowed } from '../../core/update-state.js';
import {
  actionIdOf,
  basePollJson,
  cancelJson,
  deploymentJson,
  parseConfigData,
  parseFeedback,
  pollSleepSec,
} from '../../protocol/ddi.js';
import type { DeviceUpdate, UpdateOffer } from '../../store/store.js';
import { sendBlob } from '../blob-reply.js';
import { type ServerContext, timeContext } from '../context.js';
import {
  authenticateDdi,
  CLIENT_TAG,
  type DdiProof,
  ddiHeartbeat,
  ddiProof,
  registerByGateway,
} from '../ddi-auth.js';
import { clientFile } from '../variant-files.js';

export const DEFAULT_DDI_TENANT = 'DEFAULT';

/** How many of a device's newest updates an action id is looked for among. */
const ACTIONS_LOOKED_AT = 20;

const Device = Type.Object({ controllerId: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$' }) });
const Action = Type.Object({
  controllerId: Device.properties.controllerId,
  actionId: Type.String({ pattern: '^[0-9]{1,10}$' }),
});
const Artifact = Type.Object({
  controllerId: Device.properties.controllerId,
  releaseId: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }),
  filename: Type.String({ maxLength: 300 }),
});

const ok = {};
const REFUSALS = new Set(['UNAUTHENTICATED', 'FORBIDDEN', 'CERTIFICATE_REQUIRED', 'ENROLLMENT_INVALID']);

export const ddiRoutes =
  (c: ServerContext, tenant: string): FastifyPluginAsyncTypebox =>
  async (app) => {
    // Bodies are read as text: SWUpdate's JSON is not always valid (protocol/ddi.ts reads it leniently).
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body));

    // Every refused device request is an event, as on FleetD's own device API (never the token in it).
    app.addHook('onError', async (request, _reply, error) => {
      if (!isFleetError(error) || !REFUSALS.has(error.code)) return;
      const scheme = /^(TargetToken|GatewayToken) /.exec(request.headers.authorization ?? '')?.[1] ?? 'none';
      await c.store
        .appendEvents([
          {
            at: c.clock.now(),
            type: 'device.auth_refused',
            deviceId: null,
            rolloutId: null,
            actor: null,
            reason: error.message,
            data: {
              reason: error.code.toLowerCase(),
              method: `ddi:${scheme}`,
              path: request.url.split('?', 1)[0],
            },
          },
        ])
        .catch((failure: unknown) =>
          request.log.error({ err: failure }, 'could not record a refused device request'),
        );
    });

    const digests = new BlobDigestCache(c.blobs);
    const tagged = new Set<string>();
    /**
     * Devices that sent their configData to this process. SWUpdate sends it whenever the poll links it, before
     * looking at any update, so the link goes once it was sent (as hawkBit's does); another replica asks once more.
     */
    const configured = new Set<string>();
    const base = (request: FastifyRequest, deviceId: string) =>
      `${request.protocol}://${request.host}/${tenant}/controller/v1/${deviceId}`;
    const bodyText = (request: FastifyRequest) => (typeof request.body === 'string' ? request.body : '');
    const schema = <P extends TSchema>(summary: string, params: P) => ({ summary, tags: ['ddi'], params });

    /** The device's update with this action id, among its newest. */
    async function findAction(deviceId: string, actionId: string): Promise<DeviceUpdate> {
      const id = Number(actionId);
      const updates = await c.store.updates.list({ deviceId, limit: ACTIONS_LOOKED_AT });
      const update = updates.find((u) => actionIdOf(u.id) === id);
      if (!update) throw new FleetError('NOT_FOUND', `${deviceId} has no action ${actionId}`);
      return update;
    }

    /** Tags the device as a SWUpdate client once per process (and its device-reported attributes, if any). */
    async function tagDevice(deviceId: string, attributes: Record<string, string> = {}): Promise<void> {
      const ctx = timeContext(c);
      const device = await c.store.getDevice(deviceId, ctx);
      if (!device) return;
      const tags = withReportedAttributes(device.tags, attributes, CLIENT_TAG.client);
      const changed = Object.entries(tags).some(([k, v]) => device.tags[k] !== v);
      if (changed) await c.store.importDevices([{ id: deviceId, tags }], ctx, `device:${deviceId}`);
      if (tagged.size > 100_000) tagged.clear();
      tagged.add(deviceId);
    }

    /** Whether the device acknowledged the cancel of this update already. */
    async function cancelAcknowledged(update: DeviceUpdate): Promise<boolean> {
      const [last] = await c.store.listEvents({
        deviceId: update.deviceId,
        typePrefix: 'ddi.cancel_acknowledged',
        newestFirst: true,
        limit: 1,
      });
      return last?.data.update_id === update.id;
    }

    /** A paused rollout stops its devices that have not begun installing: SWUpdate is told to cancel. */
    async function pausedBeforeInstall(update: DeviceUpdate): Promise<boolean> {
      if (update.rolloutId === null || (update.state !== 'notified' && update.state !== 'downloading')) {
        return false;
      }
      return (await c.store.rollouts.get(update.rolloutId))?.state === 'paused';
    }

    /** What the base poll links to: the update to install, a cancel, or nothing (and when to come back). */
    async function pollLinks(deviceId: string, offers: UpdateOffer[], href: string) {
      // A staged download (blue_green) is not something SWUpdate can do: only installs are offered.
      const offer = offers.find((o) => o.update.action !== 'download_only');
      if (offer) {
        const action = actionIdOf(offer.update.id);
        if (offer.retryAfterSec !== null) return { retryAfterSec: offer.retryAfterSec };
        if (await pausedBeforeInstall(offer.update))
          return { cancelAction: `${href}/cancelAction/${action}` };
        // A release with neither a .swu of its own nor a swupdate variant fails here, not on the device.
        const release = await c.store.releases.getById(offer.update.releaseId);
        const file = release && (await clientFile(c, 'swupdate', release));
        if (file?.kind === 'missing') {
          await failUpdate(offer.update, file.reason);
          return {};
        }
        return { deploymentBase: `${href}/deploymentBase/${action}` };
      }
      const [latest] = await c.store.updates.list({ deviceId, limit: 1 });
      if (latest?.state === 'cancelled' && !(await cancelAcknowledged(latest))) {
        return { cancelAction: `${href}/cancelAction/${actionIdOf(latest.id)}` };
      }
      return {};
    }

    /** Fails an update the device cannot install, with the reason (as a report of it, so the engine counts it). */
    async function failUpdate(update: DeviceUpdate, reason: string): Promise<void> {
      if (FINAL_STATES.has(update.state) || !isAllowed(update.state, 'failed')) return;
      await c.reports
        .submit({
          deviceId: update.deviceId,
          updateId: update.id,
          report: { seq: update.lastSeq + 1, state: 'failed', error: reason },
        })
        .catch((error: unknown) => {
          if (!isFleetError(error) || error.code !== 'TRANSITION_NOT_ALLOWED') throw error;
        });
    }

    async function authenticated(request: FastifyRequest, controllerId: string): Promise<string> {
      return authenticateDdi(c, ddiProof(c, request, controllerId));
    }

    app.get(
      '/:controllerId',
      {
        schema: schema(
          'Base poll (a heartbeat): the polling interval and the pending action, if any',
          Device,
        ),
      },
      async (request) => {
        const { controllerId } = request.params;
        const proof: DdiProof = ddiProof(c, request, controllerId);
        let answer = await c.heartbeats.submit(ddiHeartbeat(proof));
        if (!answer.outcome.ok && proof.kind === 'gateway') {
          await registerByGateway(c, proof);
          answer = await c.heartbeats.submit(ddiHeartbeat(proof));
        }
        if (!answer.outcome.ok) {
          throw new FleetError(
            'UNAUTHENTICATED',
            'the TargetToken or GatewayToken is unknown, revoked or not this device',
          );
        }
        if (!tagged.has(controllerId)) await tagDevice(controllerId);
        const href = base(request, controllerId);
        const { retryAfterSec, ...links } = await pollLinks(controllerId, answer.offers, href);
        // The interval of the device's connectivity class came with the row the heartbeat read: no query.
        const intervalSec = nextHeartbeatSec(answer.outcome.heartbeatIntervalMs, c.heartbeatIntervalSec);
        return basePollJson(pollSleepSec(intervalSec, retryAfterSec ?? null), {
          ...links,
          ...(configured.has(controllerId) ? {} : { configData: `${href}/configData` }),
        });
      },
    );

    app.put(
      '/:controllerId/configData',
      { schema: schema("The device's attributes (SWUpdate's identify section), kept as its tags", Device) },
      async (request) => {
        const deviceId = await authenticated(request, request.params.controllerId);
        await tagDevice(deviceId, parseConfigData(bodyText(request)));
        if (configured.size > 100_000) configured.clear();
        configured.add(deviceId);
        return ok;
      },
    );

    app.get(
      '/:controllerId/deploymentBase/:actionId',
      { schema: schema('The update of an action: its release as one chunk with one artifact', Action) },
      async (request) => {
        const { controllerId, actionId } = request.params;
        const deviceId = await authenticated(request, controllerId);
        const update = await findAction(deviceId, actionId);
        if (FINAL_STATES.has(update.state)) {
          throw new FleetError('NOT_FOUND', `action ${actionId} of ${deviceId} is ${update.state}`);
        }
        const release = await c.store.releases.getById(update.releaseId);
        if (!release) throw new FleetError('NOT_FOUND', `the release of action ${actionId} is gone`);
        const file = await clientFile(c, 'swupdate', release);
        if (file.kind === 'missing') throw new FleetError('NOT_FOUND', file.reason);
        const rollout = update.rolloutId === null ? undefined : await c.store.rollouts.get(update.rolloutId);
        const { sha1, md5 } = await digests.of(file.sha256);
        const filename = `${release.name}-${release.version}.swu`.replace(/[^A-Za-z0-9._-]/g, '_');
        return deploymentJson(
          Number(actionId),
          { name: release.name, version: release.version, soft: rollout?.spec.action === 'soft' },
          {
            filename,
            size: file.size,
            sha1,
            md5,
            sha256: file.sha256,
            href: `${base(request, deviceId)}/softwaremodules/${release.id}/artifacts/${filename}`,
          },
        );
      },
    );

    app.post(
      '/:controllerId/deploymentBase/:actionId/feedback',
      { schema: schema("The device's progress on an action, as a status report of its update", Action) },
      async (request) => {
        const { controllerId, actionId } = request.params;
        const deviceId = await authenticated(request, controllerId);
        const update = await findAction(deviceId, actionId);
        const meaning = feedbackMeaning(parseFeedback(bodyText(request)));
        // Installer log lines and repeats move nothing; a finished update stays as it ended.
        if (meaning.state && !FINAL_STATES.has(update.state) && isAllowed(update.state, meaning.state)) {
          await c.reports
            .submit({
              deviceId,
              updateId: update.id,
              report: {
                seq: update.lastSeq + 1,
                state: meaning.state,
                ...(meaning.error === undefined ? {} : { error: meaning.error }),
              },
            })
            .catch((error: unknown) => {
              // Another report moved it meanwhile: this one is simply late.
              if (!isFleetError(error) || error.code !== 'TRANSITION_NOT_ALLOWED') throw error;
            });
        }
        return ok;
      },
    );

    app.get(
      '/:controllerId/cancelAction/:actionId',
      { schema: schema('An action the device is to stop (its rollout was cancelled or paused)', Action) },
      async (request) => {
        const { controllerId, actionId } = request.params;
        const deviceId = await authenticated(request, controllerId);
        await findAction(deviceId, actionId);
        return cancelJson(Number(actionId));
      },
    );

    app.post(
      '/:controllerId/cancelAction/:actionId/feedback',
      { schema: schema("The device's acknowledgement of a cancel", Action) },
      async (request) => {
        const { controllerId, actionId } = request.params;
        const deviceId = await authenticated(request, controllerId);
        const update = await findAction(deviceId, actionId);
        const feedback = parseFeedback(bodyText(request));
        await c.store.appendEvents([
          {
            at: c.clock.now(),
            type: 'ddi.cancel_acknowledged',
            deviceId,
            rolloutId: update.rolloutId,
            actor: `device:${deviceId}`,
            reason: feedback.details.join('; ').slice(0, 500) || 'cancel acknowledged',
            data: { update_id: update.id, action_id: Number(actionId), update_state: update.state },
          },
        ]);
        return ok;
      },
    );

    app.get(
      '/:controllerId/softwaremodules/:releaseId/artifacts/:filename',
      {
        schema: schema(
          'Download the artifact of an action (HEAD, Range, ETag, If-Range for resuming)',
          Artifact,
        ),
      },
      async (request, reply) => {
        const { controllerId, releaseId } = request.params;
        const deviceId = await authenticated(request, controllerId);
        const release = await c.store.releases.getById(releaseId);
        const grant = release && (await c.store.updates.downloadGrant(deviceId, release.sha256));
        if (!release || !grant) {
          throw new FleetError('FORBIDDEN', `no update in progress gives ${deviceId} this artifact`);
        }
        const file = await clientFile(c, 'swupdate', release);
        if (file.kind === 'missing') throw new FleetError('FORBIDDEN', file.reason);
        if (request.method === 'HEAD') {
          // SWUpdate asks the size first; Fastify's own HEAD answer would say a length of 0.
          reply.hijack();
          reply.raw.writeHead(200, {
            'content-length': file.size,
            'content-type': 'application/octet-stream',
            'accept-ranges': 'bytes',
            etag: `"${file.sha256}"`,
          });
          reply.raw.end();
          return reply;
        }
        return sendBlob(c, file.sha256, request, reply, undefined, grant.rateLimit);
      },
    );
  };
