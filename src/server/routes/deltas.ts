/**
 * Binary deltas: the operator's list of those built to a release, and the device's download of one. A device
 * may download a delta only while an update in progress gives it the delta's target release.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { FleetError } from '../../core/errors.js';
import { withErrors } from '../../protocol/common.js';
import { DeltaList } from '../../protocol/deltas.js';
import { Sha256Params } from '../../protocol/device-api.js';
import { authenticateDevice } from '../auth.js';
import { sendBlob } from '../blob-reply.js';
import type { ServerContext } from '../context.js';
import { findRelease } from './artifacts.js';

const RefParams = Type.Object({
  ref: Type.String({ maxLength: 256, description: 'Release id or name@version' }),
});

/** Operator API, under /api/v1. */
export const deltaRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/releases/:ref/deltas',
      {
        config: { permission: 'releases.read' },
        schema: {
          summary: 'The binary deltas built to this release, smallest first, with their sizes',
          tags: ['artifacts'],
          params: RefParams,
          response: withErrors({ 200: DeltaList }),
        },
      },
      async (request) => {
        const release = await findRelease(c, request.params.ref);
        const deltas = await c.store.deltas.toTarget(release.id);
        return {
          deltas: deltas.map((d) => ({
            id: d.id,
            source_release_id: d.sourceReleaseId,
            source_version: d.sourceVersion,
            target_release_id: d.targetReleaseId,
            tool: d.tool,
            size: d.size,
            sha256: d.sha256,
            target_size: release.size,
            build_ms: d.buildMs,
            created_at: new Date(d.createdAt).toISOString(),
          })),
        };
      },
    );
  };

/** Device API, under /api/device/v1. */
export const deviceDeltaRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/deltas/:sha256',
      {
        schema: {
          summary: 'Download a delta offered to this device (Range, ETag, If-Range for resuming)',
          tags: ['device'],
          security: [{ deviceCredential: [] }],
          params: Sha256Params,
        },
      },
      async (request, reply) => {
        const deviceId = await authenticateDevice(c, request);
        const sha256 = request.params.sha256.toLowerCase();
        for (const delta of await c.store.deltas.bySha256(sha256)) {
          const target = await c.store.releases.getById(delta.targetReleaseId);
          const grant = target && (await c.store.updates.downloadGrant(deviceId, target.sha256));
          if (grant) return sendBlob(c, sha256, request, reply, undefined, grant.rateLimit);
        }
        throw new FleetError('FORBIDDEN', `no update in progress gives ${deviceId} this delta`);
      },
    );
  };
