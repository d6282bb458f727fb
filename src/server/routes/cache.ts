/**
 * The signed-link download (docs/serving-artifacts.md): no credential, only an unexpired link signed with the
 * server's URL secret. A cache or CDN in front fetches from here (or checks the link itself and serves its copy).
 * Off (404) unless the server has signed URLs set.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { FleetError } from '../../core/errors.js';
import { checkSignedPath } from '../../core/signed-url.js';
import { withErrors } from '../../protocol/common.js';
import { Sha256Params } from '../../protocol/device-api.js';
import { sendBlob } from '../blob-reply.js';
import type { ServerContext } from '../context.js';
import { CACHE_PREFIX, cachePath } from '../signed-artifact-urls.js';

const SignedQuery = Type.Object({
  expires: Type.Optional(Type.String({ maxLength: 16 })),
  md5: Type.Optional(Type.String({ maxLength: 64 })),
  sig: Type.Optional(Type.String({ maxLength: 64 })),
});

export const cacheRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      `${CACHE_PREFIX}/:sha256`,
      {
        schema: {
          summary: 'Download an artifact by a signed, expiring link (for a cache or CDN in front)',
          tags: ['device'],
          params: Sha256Params,
          querystring: SignedQuery,
          response: withErrors({}),
        },
      },
      async (request, reply) => {
        const signed = c.signedUrls;
        if (!signed) throw new FleetError('NOT_FOUND', 'signed artifact links are not set up on this server');
        const sha256 = request.params.sha256.toLowerCase();
        const verdict = checkSignedPath(
          signed.form,
          cachePath(sha256),
          request.query,
          c.clock.now(),
          signed.secret,
        );
        if (verdict !== 'ok') {
          const why = {
            missing: 'has no signature',
            expired: 'has expired',
            bad_signature: 'is not signed by this server',
          };
          throw new FleetError(
            'FORBIDDEN',
            `this artifact link ${why[verdict]}: ask the server for a new one`,
          );
        }
        return sendBlob(c, sha256, request, reply);
      },
    );
  };
