/**
 * TUF (docs/signing.md): the metadata devices refresh, public like any TUF repository's (its signatures are
 * its protection), and the targets by hash prefix, which only a device with an update for them may download.
 * The operator installs the next root (signed offline) and reads the repository's state.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { TufPublisher } from '../../artifacts/tuf/tuf-publisher.js';
import { rootBodyText } from '../../artifacts/tuf/tuf-root.js';
import { FleetError } from '../../core/errors.js';
import { withErrors } from '../../protocol/common.js';
import { auditChange } from '../audit/audit-trail.js';
import { authenticateDevice } from '../auth.js';
import { sendBlob } from '../blob-reply.js';
import type { ServerContext } from '../context.js';
import { DelegationView, delegationView, tufDelegationRoutes } from './tuf-delegations.js';

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
        // Roots never change once written. Timestamp changes in place, and a targets version (top-level or
        // delegated) gains signatures in place (CI's, a team's): caches must ask again for those.
        reply.header(
          'cache-control',
          /^\d+\.root\.json$/.test(request.params.file) ? 'max-age=86400' : 'no-cache',
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

const Role = Type.Union([Type.Literal('targets'), Type.Literal('snapshot'), Type.Literal('timestamp')]);

const TufState = Type.Object({
  root_version: Type.Integer(),
  /** The key id each online role signs with now. */
  keys: Type.Object({ targets: Type.String(), snapshot: Type.String(), timestamp: Type.String() }),
  /** When the trusted root and each role's published metadata expire. */
  expires: Type.Record(Type.String(), Type.String()),
  /** The delegated targets roles (tuf-delegations.ts). */
  delegations: Type.Array(DelegationView),
});

const RotationKey = Type.Object({
  role: Role,
  root_version: Type.Integer(),
  key_id: Type.String(),
  /** The new public key in TUF's form, for the next root to name. */
  key: Type.Object({}, { additionalProperties: true }),
});

export const tufOperatorRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    await app.register(tufDelegationRoutes(() => publisherOf(c)));

    app.get(
      '/tuf',
      {
        config: { permission: 'releases.read' },
        schema: {
          summary: "The TUF repository's trusted root version, online key ids and expiry times",
          tags: ['artifacts'],
          response: withErrors({ 200: TufState }),
        },
      },
      async () => {
        const repository = publisherOf(c).repository;
        const expires: Record<string, string> = {};
        for (const [role, ms] of Object.entries(repository.expiries())) {
          if (ms !== undefined) expires[role] = new Date(ms).toISOString();
        }
        return {
          root_version: repository.rootVersion,
          keys: repository.keyIds,
          expires,
          delegations: repository.delegationList().map(delegationView),
        };
      },
    );

    app.post(
      '/tuf/targets/signatures',
      {
        config: { permission: 'releases.write' },
        schema: {
          summary:
            "Add offline signatures (CI's targets key) to the current targets metadata, when the root requires them",
          tags: ['artifacts'],
          body: Type.Object({
            version: Type.Integer({ minimum: 1 }),
            signatures: Type.Array(
              Type.Object({
                keyid: Type.String({ pattern: '^[0-9a-f]{64}$' }),
                sig: Type.String({ pattern: '^[0-9a-f]{2,1024}$' }),
              }),
              { minItems: 1, maxItems: 20 },
            ),
          }),
          response: withErrors({
            200: Type.Object({ version: Type.Integer(), signatures: Type.Integer() }),
          }),
        },
      },
      async (request) => {
        const publisher = publisherOf(c);
        const { version, signatures } = request.body;
        const count = await publisher.repository.addTargetsSignatures(version, signatures);
        auditChange(request, null, { targets_version: version, signatures: count });
        // Snapshot and timestamp now name the signed bytes.
        await publisher.tick();
        return { version, signatures: count };
      },
    );

    app.post(
      '/tuf/keys/:role/rotate',
      {
        config: { permission: 'keys.write' },
        schema: {
          summary:
            'Make the new key of an online role (a rotation, or the revocation of a stolen key) for the next root to name; it signs once that root is installed',
          tags: ['artifacts'],
          params: Type.Object({ role: Role }),
          response: withErrors({ 201: RotationKey }),
        },
      },
      async (request, reply) => {
        const repository = publisherOf(c).repository;
        const key = await repository.prepareRotation(request.params.role);
        // The new public key's id, for the next root to name; its private half never leaves the key store.
        auditChange(request, null, { role: request.params.role, key_id: key.keyID });
        return reply.status(201).send({
          role: request.params.role,
          root_version: repository.rootVersion,
          key_id: key.keyID,
          key: key.toJSON(),
        });
      },
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
        const before = publisher.repository.rootVersion;
        const version = await publisher.repository.installRoot(rootBodyText(request.body));
        auditChange(request, { root_version: before }, { root_version: version });
        // Clients that see a new root re-check every role; fresh timestamp and snapshot do no harm.
        await publisher.tick();
        return reply.status(201).send({ root_version: version });
      },
    );
  };
