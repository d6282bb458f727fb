/**
 * The Mender device API under `/api/devices` (at the origin: mender-client 3.4 drops any path prefix), for
 * devices running mender-client unmodified (docs/clients/mender.md). Another edge over the same device side as
 * FleetD's own API and the DDI one: an update check is a heartbeat (the same batcher, the same offer), a status
 * is a status report, a download is the same resumable blob. The client requires 204 on status and log and 200 on
 * inventory, and reads a 409 on status as "deployment aborted".
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { type MenderArtifact, readMenderArtifact } from '../../artifacts/mender-artifact.js';
import { FleetError, isFleetError } from '../../core/errors.js';
import { menderStatusMeaning } from '../../core/mender-status.js';
import { withReportedAttributes } from '../../core/tag-edit.js';
import { FINAL_STATES, isAllowed } from '../../core/update-state.js';
import type { DeviceUpdate, UpdateOffer } from '../../store/store.js';
import { sendBlob } from '../blob-reply.js';
import { type ServerContext, timeContext } from '../context.js';
import {
  admitDevice,
  authenticateMender,
  checkAuthRequest,
  downloadSignature,
  issueToken,
  knownDevice,
  MENDER_CLIENT_TAG,
  tokenProof,
} from '../mender-auth.js';
import { clientFile } from '../variant-files.js';

/** How long a download link works (the client may resume a download with it). */
const LINK_TTL_SEC = 3600;
const MAX_LOG_LINES = 200;
const MAX_LOG_LINE = 500;
const REFUSALS = new Set(['UNAUTHENTICATED', 'FORBIDDEN', 'ENROLLMENT_INVALID', 'ENROLLMENT_REJECTED']);

const Deployment = Type.Object({ id: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }) });
const Download = Type.Object({
  expires: Type.String({ pattern: '^[0-9]{1,12}$' }),
  sig: Type.String({ maxLength: 100 }),
});

function json(request: FastifyRequest): unknown {
  const body = request.body;
  if (!Buffer.isBuffer(body) || body.length === 0) return undefined;
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new FleetError('VALIDATION', 'the body is not JSON');
  }
}

export const menderRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    // The auth request's signature covers the raw bytes: every body is kept as sent (the proxied ones are chunked).
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

    // Certificates only (--device-auth mtls): the Mender API, which authenticates by signing key, is off.
    app.addHook('onRequest', async () => {
      if (c.deviceAuth === 'mtls') {
        throw new FleetError(
          'CERTIFICATE_REQUIRED',
          'this server accepts devices by client certificate only (--device-auth mtls): the Mender API is off',
        );
      }
    });

    app.addHook('onError', async (request, _reply, error) => {
      if (!isFleetError(error) || !REFUSALS.has(error.code)) return;
      await c.store
        .appendEvents([
          {
            at: c.clock.now(),
            type: 'device.auth_refused',
            deviceId: null,
            rolloutId: null,
            actor: null,
            reason: error.message,
            data: { reason: error.code.toLowerCase(), method: 'mender', path: request.url.split('?', 1)[0] },
          },
        ])
        .catch((failure: unknown) =>
          request.log.error({ err: failure }, 'could not record a refused device request'),
        );
    });

    /** Artifact headers by blob: what a deployment must name (read once per process). */
    const headers = new Map<string, Promise<MenderArtifact>>();
    const headerOf = async (sha256: string) => {
      let found = headers.get(sha256);
      if (!found) {
        // Checked (and its signature verified) at the upload: here only the name and device types are read.
        found = readMenderArtifact(await c.blobs.createReadStream(sha256), { headerOnly: true });
        found.catch(() => headers.delete(sha256));
        if (headers.size > 1_000) headers.clear();
        headers.set(sha256, found);
      }
      return found;
    };

    /** The device's own update with this id (a deployment id is the FleetD update id). */
    async function updateOf(deviceId: string, id: string): Promise<DeviceUpdate> {
      const update = await c.store.updates.get(id);
      if (!update || update.deviceId !== deviceId)
        throw new FleetError('NOT_FOUND', `${deviceId} has no deployment ${id}`);
      return update;
    }

    /** Moves the update as the status says; a repeat, or one on a finished update, moves nothing. */
    async function report(update: DeviceUpdate, state: string, error?: string): Promise<void> {
      const to = state as Parameters<typeof isAllowed>[1];
      if (FINAL_STATES.has(update.state) || !isAllowed(update.state, to)) return;
      await c.reports
        .submit({
          deviceId: update.deviceId,
          updateId: update.id,
          report: { seq: update.lastSeq + 1, state: to as never, ...(error === undefined ? {} : { error }) },
        })
        .catch((failure: unknown) => {
          // Another report moved it meanwhile: this one is simply late.
          if (!isFleetError(failure) || failure.code !== 'TRANSITION_NOT_ALLOWED') throw failure;
        });
    }

    /** Keeps the device's inventory as its tags (and its device type as its hardware type). */
    async function keepInventory(deviceId: string, attributes: Record<string, string>): Promise<void> {
      const ctx = timeContext(c);
      const device = await c.store.getDevice(deviceId, ctx);
      if (!device) return;
      const tags = withReportedAttributes(device.tags, attributes, MENDER_CLIENT_TAG.client);
      const hardwareType = attributes.device_type ?? device.hardwareType;
      const changed =
        Object.entries(tags).some(([k, v]) => device.tags[k] !== v) || hardwareType !== device.hardwareType;
      if (changed) {
        await c.store.importDevices([{ id: deviceId, tags, hardwareType }], ctx, `device:${deviceId}`);
      }
    }

    /** A paused rollout holds back its devices that have not begun. */
    async function paused(update: DeviceUpdate): Promise<boolean> {
      if (update.rolloutId === null || update.state !== 'notified') return false;
      return (await c.store.rollouts.get(update.rolloutId))?.state === 'paused';
    }

    /** The update check: a heartbeat, answered with the deployment to install or 204. */
    async function next(request: FastifyRequest, reply: import('fastify').FastifyReply) {
      const proof = await tokenProof(c, request.headers.authorization);
      const answer = await c.heartbeats.submit({
        credentialHash: proof.credentialHash,
        heartbeat: { deviceId: proof.deviceId },
      });
      if (!answer.outcome.ok)
        throw new FleetError('UNAUTHENTICATED', 'the device is unknown or decommissioned');
      // A staged download (blue_green) is not something mender-client can do: only installs are offered.
      const offer: UpdateOffer | undefined = answer.offers.find((o) => o.update.action !== 'download_only');
      if (!offer || offer.retryAfterSec !== null || (await paused(offer.update)))
        return reply.status(204).send();
      const release = await c.store.releases.getById(offer.update.releaseId);
      if (!release) return reply.status(204).send();
      // The release itself when it is a Mender artifact, else its mender variant; with neither the update fails.
      const file = await clientFile(c, 'mender', release);
      if (file.kind === 'missing') {
        await report(offer.update, 'failed', file.reason);
        return reply.status(204).send();
      }
      const artifact = await headerOf(file.sha256);
      const expires = Math.floor(c.clock.now() / 1000) + LINK_TTL_SEC;
      const origin = `${request.protocol}://${request.host}`;
      const types = release.hardware.filter((h) => artifact.deviceTypes.includes(h));
      return {
        id: offer.update.id,
        artifact: {
          id: release.id,
          artifact_name: artifact.name,
          source: {
            uri:
              `${origin}/api/devices/v1/deployments/download/${offer.update.id}` +
              `?expires=${expires}&sig=${downloadSignature(c, offer.update.id, expires)}`,
            expire: new Date(expires * 1000).toISOString(),
          },
          device_types_compatible: types.length > 0 ? types : artifact.deviceTypes,
        },
      };
    }

    app.post(
      '/v1/authentication/auth_requests',
      {
        schema: {
          summary: 'A signed auth request (X-MEN-Signature): a device token, or 401 while pending',
          tags: ['mender'],
        },
      },
      async (request, reply) => {
        const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        const identity = checkAuthRequest(
          raw,
          request.headers['x-men-signature'],
          request.headers.authorization,
        );
        if (!(await knownDevice(c, identity))) await admitDevice(c, identity);
        // The client keeps the body verbatim as its token: nothing but the token.
        return reply.type('application/jwt').send(await issueToken(c, identity));
      },
    );

    for (const method of ['PUT', 'PATCH'] as const) {
      app.route({
        method,
        url: '/v1/inventory/device/attributes',
        schema: {
          summary: "The device's inventory, kept as its tags (device_type as hardware type)",
          tags: ['mender'],
        },
        handler: async (request) => {
          const deviceId = await authenticateMender(c, request.headers.authorization);
          const body = json(request);
          if (!Array.isArray(body))
            throw new FleetError('VALIDATION', 'the inventory is a list of {name, value}');
          const attributes: Record<string, string> = {};
          for (const item of body as Array<{ name?: unknown; value?: unknown }>) {
            if (typeof item?.name !== 'string') continue;
            const value = item.value;
            attributes[item.name] = Array.isArray(value) ? value.map(String).join(',') : String(value ?? '');
          }
          await keepInventory(deviceId, attributes);
          return {};
        },
      });
    }

    app.post(
      '/v2/deployments/device/deployments/next',
      {
        schema: {
          summary: 'Update check (a heartbeat): the deployment to install, or 204',
          tags: ['mender'],
        },
      },
      (request, reply) => next(request, reply),
    );
    app.post(
      '/v1/deployments/device/deployments/next',
      { schema: { summary: 'Update check, older form (the provides as a flat map)', tags: ['mender'] } },
      (request, reply) => next(request, reply),
    );
    app.get(
      '/v1/deployments/device/deployments/next',
      {
        schema: {
          summary: 'Update check, open-source server form (artifact_name, device_type in the query)',
          tags: ['mender'],
        },
      },
      (request, reply) => next(request, reply),
    );

    app.put(
      '/v1/deployments/device/deployments/:id/status',
      {
        schema: {
          summary: 'The progress of a deployment, as a status report of its update (204; 409: aborted)',
          tags: ['mender'],
          params: Deployment,
        },
      },
      async (request, reply) => {
        const deviceId = await authenticateMender(c, request.headers.authorization);
        const update = await updateOf(deviceId, request.params.id);
        const status = (json(request) as { status?: unknown } | undefined)?.status;
        if (typeof status !== 'string')
          throw new FleetError('VALIDATION', 'the body needs a "status" string');
        // A cancelled update is an aborted deployment: the client stops (and rolls back what it installed).
        if (update.state === 'cancelled' || update.state === 'skipped') {
          throw new FleetError('CONFLICT', `deployment ${update.id} was ${update.state}`);
        }
        const meaning = menderStatusMeaning(status);
        if (meaning.state) await report(update, meaning.state, meaning.error);
        return reply.status(204).send();
      },
    );

    app.put(
      '/v1/deployments/device/deployments/:id/log',
      {
        schema: {
          summary:
            "The device's log of a failed deployment, kept with its update (an update.device_log event)",
          tags: ['mender'],
          params: Deployment,
        },
      },
      async (request, reply) => {
        const deviceId = await authenticateMender(c, request.headers.authorization);
        const update = await updateOf(deviceId, request.params.id);
        const messages = (json(request) as { messages?: unknown } | undefined)?.messages;
        if (!Array.isArray(messages)) throw new FleetError('VALIDATION', 'the body needs a "messages" list');
        // The end of the log says what went wrong: that is what is kept when it is long.
        const lines = messages
          .slice(-MAX_LOG_LINES)
          .map((m: { timestamp?: unknown; level?: unknown; message?: unknown }) =>
            `${String(m?.timestamp ?? '')} ${String(m?.level ?? '')} ${String(m?.message ?? '')}`.slice(
              0,
              MAX_LOG_LINE,
            ),
          );
        await c.store.appendEvents([
          {
            at: c.clock.now(),
            type: 'update.device_log',
            deviceId,
            rolloutId: update.rolloutId,
            actor: `device:${deviceId}`,
            reason: `log of deployment ${update.id} (${messages.length} lines)`,
            data: { update_id: update.id, lines, truncated: messages.length > lines.length },
          },
        ]);
        return reply.status(204).send();
      },
    );

    app.get(
      '/v1/deployments/download/:id',
      {
        schema: {
          summary: 'Download the artifact of a deployment by its signed link (Range for resuming)',
          tags: ['mender'],
          params: Deployment,
          querystring: Download,
        },
      },
      async (request, reply) => {
        const { id } = request.params;
        const expires = Number(request.query.expires);
        const expected = Buffer.from(downloadSignature(c, id, expires));
        const given = Buffer.from(request.query.sig);
        if (
          expected.length !== given.length ||
          !timingSafeEqual(expected, given) ||
          expires * 1000 <= c.clock.now()
        ) {
          throw new FleetError(
            'FORBIDDEN',
            'the download link is invalid or expired: check for the update again',
          );
        }
        const update = await c.store.updates.get(id);
        const release = update && (await c.store.releases.getById(update.releaseId));
        const grant =
          update && release && !FINAL_STATES.has(update.state)
            ? await c.store.updates.downloadGrant(update.deviceId, release.sha256)
            : undefined;
        if (!update || !release || !grant) {
          throw new FleetError('FORBIDDEN', `deployment ${id} is not in progress`);
        }
        const file = await clientFile(c, 'mender', release);
        if (file.kind === 'missing') throw new FleetError('FORBIDDEN', file.reason);
        // Paced to the rollout's or the device's limit: mender-client knows no such field, the server keeps to it.
        return sendBlob(c, file.sha256, request, reply, undefined, grant.rateLimit);
      },
    );
  };
