/**
 * Operator API for releases: upload (streamed, content-addressed, signed), list, show, download, delete; and
 * verify and repair of their stored bytes.
 */
import type { IncomingMessage } from 'node:http';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { type BlobCheck, emptyUpload } from '../../artifacts/blob-store.js';
import { blobsOf, type DamagedBlob, damageEvent, damageJson, damageOf } from '../../artifacts/blob-verify.js';
import { bundleProblem } from '../../artifacts/bundle-check.js';
import { MenderArtifactError, readMenderArtifact } from '../../artifacts/mender-artifact.js';
import { readHead, swuProblem } from '../../artifacts/swu.js';
import { FleetError } from '../../core/errors.js';
import { canonicalManifest, type Manifest, parseManifest, RELEASE_TYPES } from '../../core/manifest.js';
import { formatVersion, parseVersion } from '../../core/semver.js';
import { withErrors } from '../../protocol/common.js';
import { ReleaseJson, VerifyReport } from '../../protocol/releases.js';
import { newId } from '../../registry/credentials.js';
import type { Release } from '../../store/store.js';
import { auditChange } from '../audit/audit-trail.js';
import { actorOf, operatorOf } from '../auth.js';
import { sendBlob } from '../blob-reply.js';
import type { ServerContext } from '../context.js';
import { releaseJson } from '../json.js';

const UploadQuery = Type.Object(
  {
    name: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$' })),
    version: Type.Optional(Type.String({ maxLength: 64 })),
    type: Type.Optional(Type.Union(RELEASE_TYPES.map((t) => Type.Literal(t)))),
    hardware: Type.Optional(
      Type.Array(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$', maxLength: 128 }), {
        maxItems: 64,
      }),
    ),
    allow_downgrade: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
const VerifyQuery = Type.Object(
  {
    release: Type.Optional(
      Type.String({ maxLength: 256, description: 'Only this release (id or name@version)' }),
    ),
  },
  { additionalProperties: false },
);
const RepairReply = Type.Object({
  sha256: Type.String(),
  found: Type.Union([Type.Literal('intact'), Type.Literal('missing'), Type.Literal('altered')], {
    description: 'What the stored bytes were before: anything but intact is now replaced',
  }),
});
const RefParams = Type.Object({
  ref: Type.String({ maxLength: 256, description: 'Release id or name@version' }),
});
/** What the audit log keeps of a release made or deleted: what names and identifies it, never its bytes. */
const releaseShown = (r: Release) => ({
  name: r.name,
  version: r.version,
  type: r.type,
  sha256: r.sha256,
  size: r.size,
});

/** Resolves `rel_…` or `name@version` to a release. */
export async function findRelease(c: ServerContext, ref: string): Promise<Release> {
  const at = ref.lastIndexOf('@');
  const release = ref.startsWith('rel_')
    ? await c.store.releases.getById(ref)
    : at > 0
      ? await c.store.releases.get(ref.slice(0, at), formatVersionOrSame(ref.slice(at + 1)))
      : undefined;
  if (!release) throw new FleetError('NOT_FOUND', `no release ${ref} (use name@version or a release id)`);
  return release;
}

function formatVersionOrSame(text: string): string {
  const v = parseVersion(text);
  return v ? formatVersion(v) : text;
}

function decodeHeader(value: string | string[] | undefined, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) throw new FleetError('VALIDATION', `${name}: give it once`);
  return Buffer.from(value, 'base64').toString('utf8');
}

/**
 * The client went away mid-upload: nothing is kept and nobody is left to answer, so this is no server error.
 * Logged quietly; the error answered goes to a closed socket.
 */
function aborted(request: FastifyRequest, name: string, version: string): FleetError {
  request.log.info({ release: `${name}@${version}` }, 'upload aborted by the client; nothing kept');
  return new FleetError('VALIDATION', 'the upload was cut off before its end');
}

/**
 * An upload found its blob stored but damaged, and replaced it: the event says which releases and variants used it.
 */
async function reportRepair(
  c: ServerContext,
  sha256: string,
  size: number,
  found: BlobCheck,
  actor: string,
): Promise<DamagedBlob | undefined> {
  const releases = await c.store.releases.list();
  const variants = await c.store.variants.of(releases.map((r) => r.id));
  const users = blobsOf(releases, variants).find((b) => b.sha256 === sha256);
  const damage = damageOf({ releases: [], ...users, sha256, size }, found);
  if (damage) await c.store.appendEvents([damageEvent('artifact.repaired', damage, c.clock.now(), actor)]);
  return damage;
}

/**
 * A release of type `swu` must be what SWUpdate reads (artifacts/swu.ts); refused before the release is written,
 * and its bytes are dropped unless another release has them.
 */
async function mustBeSwu(c: ServerContext, sha256: string): Promise<void> {
  const problem = swuProblem(await readHead(await c.blobs.createReadStream(sha256)));
  if (problem === undefined) return;
  if (!(await c.store.releases.blobInUse(sha256))) await c.blobs.delete(sha256);
  throw new FleetError('VALIDATION', `type swu: ${problem}`);
}

/** A release of type `bundle` must hold a valid bundle.json and its files (artifacts/bundle-check.ts), as for swu. */
async function mustBeBundle(c: ServerContext, sha256: string): Promise<void> {
  const problem = await bundleProblem(await c.blobs.createReadStream(sha256));
  if (problem === undefined) return;
  if (!(await c.store.releases.blobInUse(sha256))) await c.blobs.delete(sha256);
  throw new FleetError('VALIDATION', `type bundle: ${problem}`);
}

/**
 * A release of type `mender` must be a Mender Artifact v3 whose checksums hold and whose signature, if any,
 * verifies (artifacts/mender-artifact.ts); each of its hardware types must be one of the artifact's device types,
 * which the deployment repeats to the client. Refused before the release is written, like a bad `.swu`.
 */
async function mustBeMender(c: ServerContext, sha256: string, hardware: readonly string[]): Promise<void> {
  let problem: string | undefined;
  try {
    const artifact = await readMenderArtifact(await c.blobs.createReadStream(sha256), {
      keys: c.menderArtifactKeys ?? [],
    });
    const foreign = hardware.filter((h) => !artifact.deviceTypes.includes(h));
    if (foreign.length > 0) {
      problem = `hardware ${foreign.join(', ')} is not among the artifact's device types (${artifact.deviceTypes.join(', ')})`;
    }
  } catch (error) {
    if (!(error instanceof MenderArtifactError)) throw error;
    problem = error.message;
  }
  if (problem === undefined) return;
  if (!(await c.store.releases.blobInUse(sha256))) await c.blobs.delete(sha256);
  throw new FleetError('VALIDATION', `type mender: ${problem}`);
}

/**
 * The upload, in a scope of its own: its body is the artifact's bytes whatever the Content-Type says (none,
 * text/plain and application/json included), streamed to the blob store so memory stays flat at any size.
 * Fastify's own parsers would decode text as UTF-8 or parse JSON first, and the bytes signed would not be
 * the bytes sent.
 */
const uploadRoute =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

    app.post(
      '/artifacts',
      {
        config: { permission: 'releases.write' },
        schema: {
          summary: 'Upload an artifact (raw body, application/octet-stream) as a signed release',
          description:
            'Either give name, version, type and hardware in the query and the server signs the manifest, ' +
            'or send a manifest signed offline in the headers X-FleetD-Manifest and X-FleetD-Signature (both base64).',
          tags: ['artifacts'],
          querystring: UploadQuery,
          response: withErrors({ 201: ReleaseJson }),
        },
      },
      async (request, reply) => {
        const actor = actorOf(operatorOf(request));
        const q = request.query;
        const signedText = decodeHeader(request.headers['x-fleetd-manifest'], 'X-FleetD-Manifest');
        const signature = request.headers['x-fleetd-signature'];
        if ((signedText === undefined) !== (signature === undefined)) {
          throw new FleetError('VALIDATION', 'X-FleetD-Manifest and X-FleetD-Signature go together');
        }
        let signed: { manifest: Manifest; keyId: string; signature: string } | undefined;
        if (signedText !== undefined && typeof signature === 'string') {
          const manifest = parseManifest(signedText, { requireCanonical: true });
          signed = { manifest, keyId: c.keyring.verify(signedText, signature), signature };
        } else {
          if (!q.name || !q.version || !q.hardware?.length) {
            throw new FleetError(
              'VALIDATION',
              'querystring: name, version and at least one hardware are required',
            );
          }
          if (!parseVersion(q.version)) {
            throw new FleetError(
              'VALIDATION',
              `querystring.version: "${q.version}" is not a semantic version`,
            );
          }
        }
        const name = signed?.manifest.name ?? q.name!;
        const version = signed?.manifest.version ?? formatVersion(parseVersion(q.version!)!);
        if (await c.store.releases.get(name, version)) {
          throw new FleetError('CONFLICT', `release ${name}@${version} exists already`);
        }
        const declared = Number(request.headers['content-length']);
        if (declared === 0 || signed?.manifest.size === 0) throw emptyUpload();
        // Fastify leaves the body unset when a request has neither a length nor chunks: read it as empty.
        const body = (request.body as IncomingMessage | undefined) ?? request.raw;
        const blob = await c.blobs
          .put(body, {
            maxSize: c.maxArtifactBytes,
            refuseEmpty: true,
            ...(signed ? { expectedSize: signed.manifest.size, expectedSha256: signed.manifest.sha256 } : {}),
            ...(!signed && Number.isFinite(declared) ? { expectedSize: declared } : {}),
          })
          .catch((error: unknown) => {
            throw request.raw.readableAborted ? aborted(request, name, version) : error;
          });
        const now = c.clock.now();
        if (blob.repaired) await reportRepair(c, blob.sha256, blob.size, blob.repaired, actor);
        const manifestText = signed
          ? (signedText as string)
          : canonicalManifest({
              name,
              version,
              type: q.type ?? 'firmware',
              hardware: q.hardware!,
              size: blob.size,
              sha256: blob.sha256,
              created: now,
              allow_downgrade: q.allow_downgrade ?? false,
            });
        const manifest = signed?.manifest ?? parseManifest(manifestText);
        if (manifest.type === 'swu') await mustBeSwu(c, blob.sha256);
        if (manifest.type === 'mender') await mustBeMender(c, blob.sha256, manifest.hardware);
        if (manifest.type === 'bundle') await mustBeBundle(c, blob.sha256);
        const signing = signed ?? c.keyring.sign(manifestText);
        const release: Release = {
          id: newId('rel'),
          name,
          version,
          type: manifest.type,
          hardware: manifest.hardware,
          size: blob.size,
          sha256: blob.sha256,
          manifest: manifestText,
          signature: signing.signature,
          keyId: signing.keyId,
          allowDowngrade: manifest.allow_downgrade,
          createdAt: now,
        };
        try {
          await c.store.releases.create(release, actor);
        } catch (error) {
          if (!(await c.store.releases.blobInUse(blob.sha256))) await c.blobs.delete(blob.sha256);
          throw error;
        }
        auditChange(request, null, releaseShown(release));
        // Signed into TUF targets before a device can be offered it; a failure is logged and the timer retries.
        await c.tuf?.tick().catch(() => undefined);
        return reply.status(201).send(releaseJson(release));
      },
    );

    app.post(
      '/artifacts/:ref/repair',
      {
        config: { permission: 'releases.write' },
        schema: {
          summary: "Send a release's artifact again to replace its damaged or missing stored bytes",
          description:
            'The body must be the very bytes of the release (its size and sha256). An intact blob is left as it was.',
          tags: ['artifacts'],
          params: RefParams,
          response: withErrors({ 200: RepairReply }),
        },
      },
      async (request) => {
        const actor = actorOf(operatorOf(request));
        const release = await findRelease(c, request.params.ref);
        const before = await c.blobs.check(release.sha256);
        const body = (request.body as IncomingMessage | undefined) ?? request.raw;
        await c.blobs
          .put(body, {
            expectedSize: release.size,
            expectedSha256: release.sha256,
            maxSize: c.maxArtifactBytes,
          })
          .catch((error: unknown) => {
            throw request.raw.readableAborted ? aborted(request, release.name, release.version) : error;
          });
        const damage = await reportRepair(c, release.sha256, release.size, before, actor);
        auditChange(
          request,
          { sha256: release.sha256, stored: damage ? damage.problem : 'intact' },
          { sha256: release.sha256, stored: 'intact' },
        );
        return { sha256: release.sha256, found: damage ? damage.problem : 'intact' };
      },
    );
  };

export const artifactRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    await app.register(uploadRoute(c));

    app.get(
      '/artifacts',
      {
        config: { permission: 'releases.read' },
        schema: {
          summary: 'Every release, by name then newest version first',
          tags: ['artifacts'],
          response: withErrors({ 200: Type.Object({ artifacts: Type.Array(ReleaseJson) }) }),
        },
      },
      async () => {
        const releases = await c.store.releases.list();
        const variants = await c.store.variants.of(releases.map((r) => r.id));
        return { artifacts: releases.map((r) => releaseJson(r, variants)) };
      },
    );

    app.post(
      '/artifacts/verify',
      {
        config: { permission: 'releases.write' },
        schema: {
          summary: 'Re-hash stored artifacts and report the damaged or missing ones',
          description:
            'Reads every stored blob (or only those of `release`), with its variants, and checks it still hashes to its sha256. ' +
            'Each damaged blob is also recorded as an `artifact.corrupted` event. Reads all the bytes: slow for large stores.',
          tags: ['artifacts'],
          querystring: VerifyQuery,
          response: withErrors({ 200: VerifyReport }),
        },
      },
      async (request) => {
        const actor = actorOf(operatorOf(request));
        const ref = request.query.release;
        const releases = ref === undefined ? await c.store.releases.list() : [await findRelease(c, ref)];
        let bytes = 0;
        const damaged: DamagedBlob[] = [];
        const blobs = blobsOf(releases, await c.store.variants.of(releases.map((r) => r.id)));
        for (const blob of blobs) {
          const check = await c.blobs.check(blob.sha256);
          bytes += check.size;
          const damage = damageOf(blob, check);
          if (damage) damaged.push(damage);
        }
        const now = c.clock.now();
        if (damaged.length)
          await c.store.appendEvents(damaged.map((d) => damageEvent('artifact.corrupted', d, now, actor)));
        return { checked: blobs.length, bytes, damaged: damaged.map(damageJson) };
      },
    );

    app.get(
      '/artifacts/:ref',
      {
        config: { permission: 'releases.read' },
        schema: {
          summary: 'One release',
          tags: ['artifacts'],
          params: RefParams,
          response: withErrors({ 200: ReleaseJson }),
        },
      },
      async (request) => {
        const release = await findRelease(c, request.params.ref);
        return releaseJson(release, await c.store.variants.of([release.id]));
      },
    );

    app.get(
      '/artifacts/:ref/download',
      {
        config: { permission: 'releases.read' },
        schema: {
          summary: 'Download the artifact (Range supported)',
          tags: ['artifacts'],
          params: RefParams,
        },
      },
      async (request, reply) => {
        const release = await findRelease(c, request.params.ref);
        return sendBlob(c, release.sha256, request, reply, `${release.name}-${release.version}`);
      },
    );

    app.delete(
      '/artifacts/:ref',
      {
        config: { permission: 'releases.write' },
        schema: {
          summary: 'Delete a release; refused while a device update in progress uses it',
          tags: ['artifacts'],
          params: RefParams,
          response: withErrors({ 200: Type.Object({ deleted: Type.String() }) }),
        },
      },
      async (request) => {
        const release = await findRelease(c, request.params.ref);
        const variants = await c.store.variants.of([release.id]);
        await c.store.releases.delete(release.id, c.clock.now(), actorOf(operatorOf(request)));
        auditChange(request, { ...releaseShown(release), variants: variants.length }, null);
        for (const sha256 of [release.sha256, ...variants.map((v) => v.sha256)]) {
          if (!(await c.store.releases.blobInUse(sha256))) await c.blobs.delete(sha256);
        }
        await c.tuf?.tick().catch(() => undefined);
        return { deleted: release.id };
      },
    );

    app.get(
      '/keys',
      {
        config: { permission: 'releases.read' },
        schema: {
          summary: 'The public keys release signatures are checked against (pin one on your devices)',
          tags: ['artifacts'],
          response: withErrors({
            200: Type.Object({
              keys: Type.Array(
                Type.Object({ key_id: Type.String(), source: Type.String(), public_key: Type.String() }),
              ),
            }),
          }),
        },
      },
      async () => ({
        keys: c.keyring.trusted.map((k) => ({
          key_id: k.keyId,
          source: k.source,
          public_key: k.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
        })),
      }),
    );
  };
