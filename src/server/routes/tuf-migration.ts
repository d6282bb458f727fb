/**
 * Moving a fleet to TUF (docs/signing.md, "Moving a fleet to TUF"): the operator has the server's trusted root
 * signed with the pinned release key (by the server, or offline and handed in), and devices of a rollout with
 * `adopt_tuf: true` fetch it, check that signature with the key they were provisioned with, and trust the root.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { readTufMigration, type TufMigration, writeTufMigration } from '../../artifacts/tuf/tuf-migration.js';
import type { TufPublisher } from '../../artifacts/tuf/tuf-publisher.js';
import { FleetError, isFleetError } from '../../core/errors.js';
import { withErrors } from '../../protocol/common.js';
import { auditChange } from '../audit/audit-trail.js';
import type { ServerContext } from '../context.js';

const MigrationState = Type.Object({
  root_version: Type.Integer(),
  key_id: Type.String({ description: 'The pinned release key that signed the root' }),
  signed_by: Type.Union([Type.Literal('server'), Type.Literal('offline')]),
  signed_at: Type.String({ format: 'date-time' }),
});

const DeviceMigration = Type.Object({
  root: Type.String({ description: 'The root.json to trust, exactly the bytes the signature covers' }),
  signature: Type.String({ description: 'Base64 Ed25519 signature of `root` by the pinned release key' }),
  key_id: Type.String(),
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

async function migrationOf(c: ServerContext): Promise<TufMigration> {
  const migration = await readTufMigration(publisherOf(c).repository.folder);
  if (!migration) {
    throw new FleetError('NOT_FOUND', 'no TUF root is signed for migration: run `fleetd keys migrate` first');
  }
  return migration;
}

const stateJson = (m: TufMigration) => ({
  root_version: m.rootVersion,
  key_id: m.keyId,
  signed_by: m.signedBy,
  signed_at: m.signedAt,
});

/** Whether devices can be told to adopt TUF (a rollout's `adopt_tuf`): a root is signed for them. */
export async function tufMigrationReady(c: ServerContext): Promise<boolean> {
  return c.tuf !== undefined && (await readTufMigration(c.tuf.repository.folder)) !== undefined;
}

export const tufMigrationDeviceRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/migration',
      {
        schema: {
          summary: 'The TUF root to adopt, signed by the pinned release key (for a rollout with adopt_tuf)',
          tags: ['device'],
          // Public like the root itself: the signature is what a device checks.
          security: [],
          response: withErrors({ 200: DeviceMigration }),
        },
      },
      async () => {
        const m = await migrationOf(c);
        return { root: m.root, signature: m.signature, key_id: m.keyId };
      },
    );
  };

export const tufMigrationOperatorRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/tuf/migration',
      {
        config: { permission: 'releases.read' },
        schema: {
          summary: 'Which TUF root devices adopt through a rollout with adopt_tuf, and who signed it',
          tags: ['artifacts'],
          response: withErrors({ 200: MigrationState }),
        },
      },
      async () => stateJson(await migrationOf(c)),
    );

    app.post(
      '/tuf/migration',
      {
        config: { permission: 'keys.write' },
        schema: {
          summary:
            "Sign the server's trusted TUF root with the pinned release key for devices to adopt (or hand in an offline signature)",
          tags: ['artifacts'],
          body: Type.Object(
            {
              root_version: Type.Integer({
                minimum: 1,
                description: 'The root the signature is for: must be the one the server trusts now',
              }),
              signature: Type.Optional(
                Type.String({
                  minLength: 1,
                  maxLength: 200,
                  description:
                    'Base64 signature made offline (`fleetd keys migrate --key`); without it the server signs',
                }),
              ),
            },
            { additionalProperties: false },
          ),
          response: withErrors({ 201: MigrationState }),
        },
      },
      async (request, reply) => {
        const repository = publisherOf(c).repository;
        const version = repository.rootVersion;
        if (request.body.root_version !== version) {
          throw new FleetError(
            'CONFLICT',
            `root_version: the server trusts root version ${version}, not ${request.body.root_version}`,
          );
        }
        const bytes = await repository.metadataFile(`${version}.root.json`);
        if (!bytes) throw new FleetError('NOT_FOUND', `root version ${version} is not in the repository`);
        const root = bytes.toString('utf8');
        const { signature } = request.body;
        let signed: { signature: string; keyId: string };
        try {
          signed =
            signature === undefined
              ? c.keyring.sign(root)
              : { signature, keyId: c.keyring.verify(root, signature) };
        } catch (e) {
          if (!isFleetError(e)) throw e;
          throw new FleetError(
            'VALIDATION',
            signature === undefined
              ? 'this server does not hold the release signing key (--no-server-signing): sign the root offline with `fleetd keys migrate --key FILE`'
              : `signature: does not verify root version ${version} with any release key this server trusts`,
          );
        }
        const before = await readTufMigration(repository.folder);
        const migration: TufMigration = {
          rootVersion: version,
          root,
          signature: signed.signature,
          keyId: signed.keyId,
          signedBy: signature === undefined ? 'server' : 'offline',
          signedAt: new Date(c.clock.now()).toISOString(),
        };
        await writeTufMigration(repository.folder, migration);
        auditChange(request, before ? stateJson(before) : null, stateJson(migration));
        return reply.status(201).send(stateJson(migration));
      },
    );
  };
