/** Operator API for access: users, API tokens (shown once), roles, and whoami. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { DURATION_LIMITS, parseDuration } from '../../core/duration.js';
import { FleetError } from '../../core/errors.js';
import { parseFilter } from '../../core/filter/index.js';
import { BUILT_IN_ROLES, checkCustomRole, PERMISSIONS } from '../../core/permissions.js';
import {
  AddRoleBody,
  AddUserBody,
  CreateTokenBody,
  RoleJson,
  RoleParams,
  TokenCreatedJson,
  TokenJson,
  TokenParams,
  UserJson,
  UserParams,
  WhoamiJson,
} from '../../protocol/access.js';
import { iso, withErrors } from '../../protocol/common.js';
import { hashSecret, newId, newSecret } from '../../registry/credentials.js';
import type { TokenInfo, User } from '../../store/principals.js';
import { auditChange } from '../audit/audit-trail.js';
import { actorOf, operatorOf } from '../auth.js';
import type { ServerContext } from '../context.js';
import { hashPassword } from '../passwords.js';
import { type Principal, permissionsOf, principalOf } from '../principal.js';

const userJson = (u: User) => ({
  id: u.id,
  name: u.name,
  role: u.role,
  scope: u.scope,
  created_at: iso(u.createdAt)!,
  disabled_at: iso(u.disabledAt),
});

const tokenJson = (t: TokenInfo) => ({
  id: t.id,
  name: t.name,
  role: t.role,
  scope: t.scope,
  created_at: iso(t.createdAt)!,
  expires_at: iso(t.expiresAt),
  last_used_at: iso(t.lastUsedAt),
  revoked_at: iso(t.revokedAt),
  created_by: t.createdBy,
});

/**
 * What a principal may hand out: a role whose permissions it holds itself, and a scope inside its own (a
 * scoped creator's scope is and-ed into the new one), so no one makes a principal stronger than they are.
 */
async function grantable(
  c: ServerContext,
  creator: Principal,
  role: string,
  scope: string | undefined,
): Promise<string | null> {
  // FILTER_SYNTAX before anything is written, an unknown group or a cycle of groups included.
  if (scope !== undefined) await c.store.groups.expand(parseFilter(scope));
  const exists = Object.hasOwn(BUILT_IN_ROLES, role) || (await c.store.principals.findRole(role));
  if (!exists) {
    throw new FleetError(
      'VALIDATION',
      `role: ${role} is not a role; built-in are ${Object.keys(BUILT_IN_ROLES).join(', ')}, or add one at /api/v1/roles`,
    );
  }
  const missing = [...(await permissionsOf(c.store, role))].filter((p) => !creator.permissions.has(p));
  if (missing.length > 0) {
    throw new FleetError(
      'FORBIDDEN',
      `role ${role} has permissions your role ${creator.role} does not (${missing.join(', ')}); you may only grant what you hold`,
    );
  }
  if (creator.scope === null) return scope ?? null;
  return scope === undefined ? creator.scope : `(${creator.scope}) and (${scope})`;
}

/** The principal as whoami (and the dashboard's session) shows it. */
export const whoamiJson = (p: Principal) => ({
  kind: p.kind,
  id: p.id,
  name: p.name,
  role: p.role,
  permissions: PERMISSIONS.filter((x) => p.permissions.has(x)),
  scope: p.scope,
  expires_at: iso(p.expiresAt),
});

export const principalRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/whoami',
      {
        config: { permission: 'authenticated' },
        schema: {
          summary: 'The calling principal: its role, permissions and scope',
          tags: ['access'],
          response: withErrors({ 200: WhoamiJson }),
        },
      },
      async (request) => whoamiJson(principalOf(request)),
    );

    app.post(
      '/users',
      {
        config: { permission: 'admin.users' },
        schema: {
          summary: 'Add an operator account (the password is stored as an argon2id hash)',
          tags: ['access'],
          body: AddUserBody,
          response: withErrors({ 201: UserJson }),
        },
      },
      async (request, reply) => {
        const b = request.body;
        const scope = await grantable(c, principalOf(request), b.role, b.scope);
        const user = await c.store.principals.addUser(
          {
            id: newId('usr'),
            name: b.name,
            passwordHash: await hashPassword(b.password),
            role: b.role,
            scope,
            createdAt: c.clock.now(),
          },
          actorOf(operatorOf(request)),
        );
        auditChange(request, null, { name: user.name, role: user.role, scope: user.scope });
        return reply.status(201).send(userJson(user));
      },
    );

    app.get(
      '/users',
      {
        config: { permission: 'admin.users' },
        schema: {
          summary: 'Operator accounts, by name',
          tags: ['access'],
          response: withErrors({ 200: Type.Object({ users: Type.Array(UserJson) }) }),
        },
      },
      async () => ({ users: (await c.store.principals.listUsers()).map(userJson) }),
    );

    app.post(
      '/users/:name/disable',
      {
        config: { permission: 'admin.users' },
        schema: {
          summary: 'Disable an operator account; its name stays taken',
          tags: ['access'],
          params: UserParams,
          response: withErrors({ 200: UserJson }),
        },
      },
      async (request) => {
        const before = await c.store.principals.findUser(request.params.name);
        const user = await c.store.principals.disableUser(
          request.params.name,
          c.clock.now(),
          actorOf(operatorOf(request)),
        );
        const disabled = (u: { disabledAt: number | null }) => ({
          disabled_at: u.disabledAt === null ? null : new Date(u.disabledAt).toISOString(),
        });
        auditChange(request, before && disabled(before), disabled(user));
        return userJson(user);
      },
    );

    app.post(
      '/tokens',
      {
        config: { permission: 'admin.tokens' },
        schema: {
          summary: 'Create an API token with a role, an optional scope and expiry; the secret is shown once',
          tags: ['access'],
          body: CreateTokenBody,
          response: withErrors({ 201: TokenCreatedJson }),
        },
      },
      async (request, reply) => {
        const b = request.body;
        const ttl =
          b.expires_in === undefined
            ? undefined
            : parseDuration(b.expires_in, 'expires_in', DURATION_LIMITS.tokenExpiry);
        const scope = await grantable(c, principalOf(request), b.role, b.scope);
        const now = c.clock.now();
        const secret = newSecret('api');
        const actor = actorOf(operatorOf(request));
        const token = await c.store.principals.addToken(
          {
            id: newId('tok'),
            name: b.name,
            role: b.role,
            scope,
            createdAt: now,
            expiresAt: ttl === undefined ? null : now + ttl,
            createdBy: actor,
          },
          hashSecret(secret),
          actor,
        );
        // Never the secret: what the token may do and until when.
        auditChange(request, null, {
          name: token.name,
          role: token.role,
          scope: token.scope,
          expires_at: token.expiresAt === null ? null : new Date(token.expiresAt).toISOString(),
        });
        return reply.status(201).send({ ...tokenJson(token), token: secret });
      },
    );

    app.get(
      '/tokens',
      {
        config: { permission: 'admin.tokens' },
        schema: {
          summary: 'API tokens, newest first, revoked and expired ones included (never their secrets)',
          tags: ['access'],
          response: withErrors({ 200: Type.Object({ tokens: Type.Array(TokenJson) }) }),
        },
      },
      async () => ({ tokens: (await c.store.principals.listTokens()).map(tokenJson) }),
    );

    app.delete(
      '/tokens/:id',
      {
        config: { permission: 'admin.tokens' },
        schema: {
          summary: 'Revoke an API token: refused from its next request on, on every replica',
          tags: ['access'],
          params: TokenParams,
          response: withErrors({ 200: TokenJson }),
        },
      },
      async (request) => {
        const token = await c.store.principals.revokeToken(
          request.params.id,
          c.clock.now(),
          actorOf(operatorOf(request)),
        );
        // The store refuses a token revoked already: it was live until now.
        auditChange(
          request,
          { name: token.name, role: token.role, revoked_at: null },
          {
            name: token.name,
            role: token.role,
            revoked_at: token.revokedAt === null ? null : new Date(token.revokedAt).toISOString(),
          },
        );
        return tokenJson(token);
      },
    );

    app.get(
      '/roles',
      {
        config: { permission: 'authenticated' },
        schema: {
          summary: 'The built-in and custom roles with their permissions',
          tags: ['access'],
          response: withErrors({ 200: Type.Object({ roles: Type.Array(RoleJson) }) }),
        },
      },
      async () => ({
        roles: [
          ...Object.entries(BUILT_IN_ROLES).map(([name, permissions]) => ({
            name,
            built_in: true,
            permissions: [...permissions],
          })),
          ...(await c.store.principals.listRoles()).map((r) => ({
            name: r.name,
            built_in: false,
            permissions: r.permissions,
          })),
        ],
      }),
    );

    app.post(
      '/roles',
      {
        config: { permission: 'admin.roles' },
        schema: {
          summary: 'Add a custom role: a named set of permissions',
          tags: ['access'],
          body: AddRoleBody,
          response: withErrors({ 201: RoleJson }),
        },
      },
      async (request, reply) => {
        const permissions = checkCustomRole(request.body.name, request.body.permissions);
        const role = await c.store.principals.addRole(
          { name: request.body.name, permissions, createdAt: c.clock.now() },
          actorOf(operatorOf(request)),
        );
        auditChange(request, null, { name: role.name, permissions: role.permissions });
        return reply.status(201).send({ name: role.name, built_in: false, permissions: role.permissions });
      },
    );

    app.delete(
      '/roles/:name',
      {
        config: { permission: 'admin.roles' },
        schema: {
          summary: 'Delete a custom role no live token or enabled user holds',
          tags: ['access'],
          params: RoleParams,
          response: withErrors({ 200: Type.Object({ deleted: Type.String() }) }),
        },
      },
      async (request) => {
        const before = await c.store.principals.findRole(request.params.name);
        await c.store.principals.deleteRole(request.params.name, c.clock.now(), actorOf(operatorOf(request)));
        auditChange(request, before && { name: before.name, permissions: before.permissions }, null);
        return { deleted: request.params.name };
      },
    );
  };
