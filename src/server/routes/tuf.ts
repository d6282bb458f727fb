/**
 * TUF (docs/signing.md): the metadata devices refresh, public like any TUF repository's (its signatures are
 * its protection), and the targets by hash prefix, which only a device with an update for them may download.
 * The operator installs the next root (signed offline) and reads the repository's state.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { TufPublisher } from '../../artifacts/tuf/tuf-publisher.js';
import { FleetError } from '../../core/errors.js';
import { withErrors } from '../../protocol/common.js';
import { authenticateDevice } from '../auth.js';
import { sendBlob } from '../blob-reply.js';
import type { ServerContext } from '../context.js';

const TargetParams = Type.Object({
  file: Type.String({ maxLength: 400, pattern: '^[0-9a-f]{64}\\..+$' }),
});

function publisherOf(c: ServerContext): TufPublisher {
  if (!c.tuf) {
    throw new FleetError(
      'NOT_FOUND',
      'this server has no TUF repository: install a root made with `fleetd keys root init` (docs/signing.md)',
    );
  }
  return c.tuf;
}

export const tufDeviceRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/:file',
      {
        schema: {
          summary: 'TUF metadata: N.root.json, timestamp.json, N.snapshot.json, N.targets.json',
          tags: ['device'],
          security: [],
          params: Type.Object({ file: Type.String({ maxLength: 64 }) }),
          response: withErrors({}),
        },
      },
      async (request, reply) => {
        const bytes = await publisherOf(c).repository.metadataFile(request.params.file);
        if (!bytes) throw new FleetError('NOT_FOUND', `no TUF metadata ${request.params.file}`);
        // timestamp.json changes in place; the versioned files never do.
        reply.header(
          'cache-control',
          request.params.file === 'timestamp.json' ? 'no-cache' : 'max-age=86400',
        );
        return reply.type('application/json').send(bytes);
      },
    );

    app.get(
      '/targets/:file',
      {
        schema: {
          summary:
            'A TUF target by its sha256 prefix (`SHA256.name@version`), for a device with an update for it',
          tags: ['device'],
          security: [{ deviceCredential: [] }],
          params: TargetParams,
        },
      },
      async (request, reply) => {
        publisherOf(c);
        const deviceId = await authenticateDevice(c, request);
        const sha256 = request.params.file.slice(0, 64);
        if (!(await c.store.updates.mayDownload(deviceId, sha256))) {
          throw new FleetError('FORBIDDEN', `no update in progress gives ${deviceId} this target`);
        }
        return sendBlob(c, sha256, request, reply);
      },
    );
  };

const TufStatus = Type.Object({
  root_version: Type.Integer(),
});

export const tufOperatorRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/tuf',
      {
        config: { permission: 'releases.read' },
        schema: {
          summary: "The TUF repository's trusted root version",
          tags: ['artifacts'],
          response: withErrors({ 200: TufStatus }),
        },
      },
      async () => ({ root_version: publisherOf(c).repository.rootVersion }),
    );

    app.post(
      '/tuf/root',
      {
        config: { permission: 'keys.write' },
        schema: {
          summary:
            'Install the next root (version + 1), signed offline by a threshold of the current and of its own root keys',
          tags: ['artifacts'],
          body: Type.Object({}, { additionalProperties: true }),
          response: withErrors({ 201: TufStatus }),
        },
      },
      async (request, reply) => {
        const publisher = publisherOf(c);
        const version = await publisher.repository.installRoot(JSON.stringify(request.body));
        // Clients that see a new root re-check every role; fresh timestamp and snapshot do no harm.
        await publisher.tick();
        return reply.status(201).send({ root_version: version });
      },
    );
  };
