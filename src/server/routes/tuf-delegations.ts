/**
 * Delegated targets roles (docs/signing.md): an operator delegates a product line's paths to a team's keys
 * (`keys.write`); the team hands back its offline signatures over the role's newest metadata (`releases.write`),
 * which the server checks against the delegation's keys before snapshot lists that version.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { RoleState } from '../../artifacts/tuf/tuf-delegated-roles.js';
import {
  type Delegation,
  MAX_DELEGATION_KEYS,
  MAX_DELEGATION_PATHS,
  parseDelegation,
} from '../../artifacts/tuf/tuf-delegations.js';
import type { TufPublisher } from '../../artifacts/tuf/tuf-publisher.js';
import { withErrors } from '../../protocol/common.js';
import { auditChange } from '../audit/audit-trail.js';

export const DelegationView = Type.Object({
  name: Type.String(),
  paths: Type.Array(Type.String()),
  key_ids: Type.Array(Type.String()),
  threshold: Type.Integer(),
  terminating: Type.Boolean(),
  /** The newest version of the role's metadata, the one its team signs next. */
  version: Type.Union([Type.Integer(), Type.Null()]),
  /** The newest version that meets the threshold: what devices trust; null before the team first signs. */
  signed_version: Type.Union([Type.Integer(), Type.Null()]),
  /** When the signed version expires. */
  expires: Type.Union([Type.String(), Type.Null()]),
  /** The targets of the newest version. */
  targets: Type.Array(Type.String()),
  /** The newest version is not signed by the threshold yet (new releases, or a renewal). */
  awaiting_signature: Type.Boolean(),
});

export function delegationView(d: Delegation & RoleState) {
  return {
    name: d.name,
    paths: d.paths,
    key_ids: Object.keys(d.keys),
    threshold: d.threshold,
    terminating: d.terminating,
    version: d.newest?.version ?? null,
    signed_version: d.signed?.version ?? null,
    expires: d.signed ? new Date(d.signed.expiresMs).toISOString() : null,
    targets: Object.keys(d.newest?.targets ?? {}).sort(),
    awaiting_signature: d.newest !== undefined && d.newest.version !== d.signed?.version,
  };
}

const NameParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 64 }) });

/** `publisherOf` answers the server's TUF publisher, or throws NOT_FOUND when TUF is off (routes/tuf.ts). */
export const tufDelegationRoutes =
  (publisherOf: () => TufPublisher): FastifyPluginAsyncTypebox =>
  async (app) => {
    const shown = (name: string) => {
      const d = publisherOf()
        .repository.delegationList()
        .find((x) => x.name === name);
      return d && delegationView(d);
    };
    // What the audit log keeps of a delegation: who may sign what, not the (long) list of its releases.
    const audited = (v: ReturnType<typeof delegationView> | undefined) =>
      v
        ? {
            name: v.name,
            paths: v.paths,
            key_ids: v.key_ids,
            threshold: v.threshold,
            terminating: v.terminating,
          }
        : null;

    app.get(
      '/tuf/delegations',
      {
        config: { permission: 'releases.read' },
        schema: {
          summary: 'The delegated targets roles: their paths, key ids, threshold and signed version',
          tags: ['artifacts'],
          response: withErrors({ 200: Type.Object({ delegations: Type.Array(DelegationView) }) }),
        },
      },
      async () => ({ delegations: publisherOf().repository.delegationList().map(delegationView) }),
    );

    app.put(
      '/tuf/delegations/:name',
      {
        config: { permission: 'keys.write' },
        schema: {
          summary:
            "Delegate the releases matching `paths` to a team's keys (or change a delegation): only they can sign them",
          tags: ['artifacts'],
          params: NameParams,
          body: Type.Object({
            paths: Type.Array(Type.String({ minLength: 1, maxLength: 200 }), {
              minItems: 1,
              maxItems: MAX_DELEGATION_PATHS,
            }),
            /** The team's Ed25519 public keys, PEM. */
            keys: Type.Array(Type.String({ minLength: 1, maxLength: 2000 }), {
              minItems: 1,
              maxItems: MAX_DELEGATION_KEYS,
            }),
            threshold: Type.Integer({ minimum: 1, maximum: MAX_DELEGATION_KEYS, default: 1 }),
            terminating: Type.Boolean({ default: false }),
          }),
          response: withErrors({ 200: DelegationView }),
        },
      },
      async (request) => {
        const publisher = publisherOf();
        const delegation = parseDelegation({ name: request.params.name, ...request.body });
        const before = audited(shown(delegation.name));
        await publisher.repository.delegate(delegation);
        // The top-level targets name the delegation, and the role's first version awaits the team's signature.
        await publisher.tick();
        const after = shown(delegation.name);
        auditChange(request, before, audited(after));
        return after;
      },
    );

    app.delete(
      '/tuf/delegations/:name',
      {
        config: { permission: 'keys.write' },
        schema: {
          summary:
            "Remove a delegation: its releases go back to the top-level targets, signed by the server's key alone",
          tags: ['artifacts'],
          params: NameParams,
          response: withErrors({ 200: Type.Object({ deleted: Type.String() }) }),
        },
      },
      async (request) => {
        const publisher = publisherOf();
        const before = audited(shown(request.params.name));
        await publisher.repository.undelegate(request.params.name);
        await publisher.tick();
        auditChange(request, before, null);
        return { deleted: request.params.name };
      },
    );

    app.post(
      '/tuf/delegations/:name/signatures',
      {
        config: { permission: 'releases.write' },
        schema: {
          summary: "Add a team's offline signatures to its delegated role's newest metadata",
          tags: ['artifacts'],
          params: NameParams,
          body: Type.Object({
            version: Type.Integer({ minimum: 1 }),
            signatures: Type.Array(
              Type.Object({
                keyid: Type.String({ pattern: '^[0-9a-f]{64}$' }),
                sig: Type.String({ pattern: '^[0-9a-f]{2,1024}$' }),
              }),
              { minItems: 1, maxItems: MAX_DELEGATION_KEYS },
            ),
          }),
          response: withErrors({
            200: Type.Object({
              name: Type.String(),
              version: Type.Integer(),
              signatures: Type.Integer(),
              threshold: Type.Integer(),
              /** The threshold is met: snapshot lists this version, and devices trust its targets. */
              published: Type.Boolean(),
            }),
          }),
        },
      },
      async (request) => {
        const publisher = publisherOf();
        const { version, signatures } = request.body;
        const r = await publisher.repository.addDelegatedSignatures(request.params.name, version, signatures);
        auditChange(request, null, { role: request.params.name, version, signatures: r.valid });
        // Snapshot and timestamp now name the signed bytes.
        await publisher.tick();
        return {
          name: request.params.name,
          version,
          signatures: r.valid,
          threshold: r.threshold,
          published: r.valid >= r.threshold,
        };
      },
    );
  };
