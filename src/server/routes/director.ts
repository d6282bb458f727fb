/**
 * The director (docs/signing.md, "The director"): each device reads its own director metadata (the root chain,
 * and the timestamp, snapshot and targets signed for it alone), authenticated, since they say what it is to
 * install; the operator reads the director's state, installs its next root (signed offline) and starts an
 * online key's rotation.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { DirectorRepository } from '../../artifacts/director/director-repository.js';
import { rootBodyText } from '../../artifacts/tuf/tuf-root.js';
import { FleetError } from '../../core/errors.js';
import { withErrors } from '../../protocol/common.js';
import { auditChange } from '../audit/audit-trail.js';
import { authenticateDevice } from '../auth.js';
import type { ServerContext } from '../context.js';

function directorOf(c: ServerContext): DirectorRepository {
  if (!c.director) {
    throw new FleetError(
      'NOT_FOUND',
      'this server has no director: install a director root made with `fleetd keys director init` (docs/signing.md)',
    );
  }
  return c.director;
}

export const directorDeviceRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/:file',
      {
        schema: {
          summary:
            "The director's metadata for the calling device: N.root.json, timestamp.json, N.snapshot.json, N.targets.json",
          tags: ['device'],
          security: [{ deviceCredential: [] }],
          params: Type.Object({ file: Type.String({ maxLength: 64 }) }),
          response: withErrors({}),
        },
      },
      async (request, reply) => {
        const director = directorOf(c);
        const deviceId = await authenticateDevice(c, request);
        const bytes = await director.metadataFile(deviceId, request.params.file);
        if (!bytes)
          throw new FleetError('NOT_FOUND', `no director metadata ${request.params.file} for ${deviceId}`);
        // Per device and changing with its updates: never from a shared cache.
        reply.header('cache-control', 'private, no-cache');
        return reply.type('application/json').send(bytes);
      },
    );
  };

const Role = Type.Union([Type.Literal('targets'), Type.Literal('snapshot'), Type.Literal('timestamp')]);

const DirectorState = Type.Object({
  root_version: Type.Integer(),
  /** The key ids the trusted director root names for its root role (held offline). */
  root_keys: Type.Array(Type.String()),
  /** The key id each online director role signs with now. */
  keys: Type.Object({ targets: Type.String(), snapshot: Type.String(), timestamp: Type.String() }),
  /** When the trusted director root expires. */
  root_expires: Type.String(),
});

export const directorOperatorRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/tuf/director',
      {
        config: { permission: 'releases.read' },
        schema: {
          summary: "The director's trusted root version, root and online key ids, and root expiry",
          tags: ['artifacts'],
          response: withErrors({ 200: DirectorState }),
        },
      },
      async () => {
        const director = directorOf(c);
        return {
          root_version: director.rootVersion,
          root_keys: director.rootKeyIds,
          keys: director.keyIds,
          root_expires: new Date(director.rootExpiresMs).toISOString(),
        };
      },
    );

    app.get(
      '/tuf/director/root',
      {
        config: { permission: 'releases.read' },
        schema: {
          summary: "The director root the server trusts now, for devices' provisioning bundles",
          tags: ['artifacts'],
          response: withErrors({ 200: Type.Object({}, { additionalProperties: true }) }),
        },
      },
      async (_request, reply) => {
        const director = directorOf(c);
        const bytes = await director.rootFile(director.rootVersion);
        if (!bytes) throw new FleetError('NOT_FOUND', 'the director root file is missing');
        return reply.type('application/json').send(bytes);
      },
    );

    app.post(
      '/tuf/director/root',
      {
        config: { permission: 'keys.write' },
        schema: {
          summary:
            "Install the director's next root (version + 1), signed offline by a threshold of its current and of its own root keys",
          tags: ['artifacts'],
          body: Type.Object({}, { additionalProperties: true }),
          response: withErrors({ 201: Type.Object({ root_version: Type.Integer() }) }),
        },
      },
      async (request, reply) => {
        const director = directorOf(c);
        const before = director.rootVersion;
        const version = await director.installRoot(rootBodyText(request.body));
        auditChange(request, { director_root_version: before }, { director_root_version: version });
        return reply.status(201).send({ root_version: version });
      },
    );

    app.post(
      '/tuf/director/keys/:role/rotate',
      {
        config: { permission: 'keys.write' },
        schema: {
          summary:
            "Make the director's new key for an online role, for its next root to name; it signs once that root is installed",
          tags: ['artifacts'],
          params: Type.Object({ role: Role }),
          response: withErrors({
            201: Type.Object({
              role: Role,
              root_version: Type.Integer(),
              key_id: Type.String(),
              key: Type.Object({}, { additionalProperties: true }),
            }),
          }),
        },
      },
      async (request, reply) => {
        const director = directorOf(c);
        const key = await director.prepareRotation(request.params.role);
        auditChange(request, null, { director_role: request.params.role, key_id: key.keyID });
        return reply.status(201).send({
          role: request.params.role,
          root_version: director.rootVersion,
          key_id: key.keyID,
          key: key.toJSON(),
        });
      },
    );
  };
