/**
 * Operator API for release variants (core/release-variants.ts): the upload of a release's file for one device update
 * client — a `.swu` for SWUpdate, a `.mender` for mender-client — checked as that client reads it before it is kept.
 * A variant is not signed by FleetD: SWUpdate and mender-client check their own formats' signatures.
 */
import type { IncomingMessage } from 'node:http';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { emptyUpload } from '../../artifacts/blob-store.js';
import { MenderArtifactError, readMenderArtifact } from '../../artifacts/mender-artifact.js';
import { readHead, swuProblem } from '../../artifacts/swu.js';
import { FleetError } from '../../core/errors.js';
import { type VariantClient, variantProblem } from '../../core/release-variants.js';
import { withErrors } from '../../protocol/common.js';
import { ReleaseJson } from '../../protocol/releases.js';
import type { Release } from '../../store/store.js';
import { auditChange } from '../audit/audit-trail.js';
import { actorOf, operatorOf } from '../auth.js';
import type { ServerContext } from '../context.js';
import { releaseJson } from '../json.js';
import { findRelease } from './artifacts.js';

const VariantParams = Type.Object({
  ref: Type.String({ maxLength: 256, description: 'Release id or name@version' }),
  client: Type.String({ maxLength: 64, description: 'swupdate (a .swu) or mender (a .mender)' }),
});

/** Why the stored blob is not a file `client` installs; undefined when it is. */
async function formatProblem(
  c: ServerContext,
  client: VariantClient,
  release: Release,
  sha256: string,
): Promise<string | undefined> {
  if (client === 'swupdate') return swuProblem(await readHead(await c.blobs.createReadStream(sha256)));
  try {
    const artifact = await readMenderArtifact(await c.blobs.createReadStream(sha256), {
      keys: c.menderArtifactKeys ?? [],
    });
    // The deployment names the release's hardware the artifact is for: it must be for one of them at least.
    if (!release.hardware.some((h) => artifact.deviceTypes.includes(h))) {
      return `none of the release's hardware (${release.hardware.join(', ')}) is among the artifact's device types (${artifact.deviceTypes.join(', ')})`;
    }
    return undefined;
  } catch (error) {
    if (!(error instanceof MenderArtifactError)) throw error;
    return error.message;
  }
}

/** A raw upload, in a scope of its own like the release upload: the body is the file's bytes, streamed. */
export const releaseVariantRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

    app.post(
      '/artifacts/:ref/variants/:client',
      {
        config: { permission: 'releases.write' },
        schema: {
          summary: "Add a release's file for one device update client (raw body): a .swu or a .mender",
          description:
            'SWUpdate devices are given the swupdate variant (a cpio with sw-description first), mender-client ' +
            "devices the mender variant (a Mender Artifact v3 for one of the release's hardware) of a release whose " +
            'own type they cannot install; FleetD agents install the release itself. One variant per client.',
          tags: ['artifacts'],
          params: VariantParams,
          response: withErrors({ 201: ReleaseJson }),
        },
      },
      async (request, reply) => {
        const actor = actorOf(operatorOf(request));
        const release = await findRelease(c, request.params.ref);
        const client = request.params.client;
        const problem = variantProblem(client, release.type);
        if (problem !== undefined) throw new FleetError('VALIDATION', problem);
        const variantClient = client as VariantClient;
        const label = `${release.name}@${release.version}`;
        if ((await c.store.variants.of([release.id])).some((v) => v.client === variantClient)) {
          throw new FleetError('CONFLICT', `release ${label} has a ${client} variant already`);
        }
        const declared = Number(request.headers['content-length']);
        if (declared === 0) throw emptyUpload();
        const body = (request.body as IncomingMessage | undefined) ?? request.raw;
        const blob = await c.blobs
          .put(body, {
            maxSize: c.maxArtifactBytes,
            refuseEmpty: true,
            ...(Number.isFinite(declared) ? { expectedSize: declared } : {}),
          })
          .catch((error: unknown) => {
            if (!request.raw.readableAborted) throw error;
            request.log.info(
              { release: label, client },
              'variant upload aborted by the client; nothing kept',
            );
            throw new FleetError('VALIDATION', 'the upload was cut off before its end');
          });
        const dropBlob = async () => {
          if (!(await c.store.releases.blobInUse(blob.sha256))) await c.blobs.delete(blob.sha256);
        };
        const bad = await formatProblem(c, variantClient, release, blob.sha256);
        if (bad !== undefined) {
          await dropBlob();
          throw new FleetError('VALIDATION', `${client} variant: ${bad}`);
        }
        try {
          await c.store.variants.add(
            {
              releaseId: release.id,
              client: variantClient,
              size: blob.size,
              sha256: blob.sha256,
              createdAt: c.clock.now(),
            },
            actor,
          );
        } catch (error) {
          await dropBlob();
          throw error;
        }
        auditChange(request, null, {
          release: label,
          client: variantClient,
          sha256: blob.sha256,
          size: blob.size,
        });
        return reply.status(201).send(releaseJson(release, await c.store.variants.of([release.id])));
      },
    );
  };
