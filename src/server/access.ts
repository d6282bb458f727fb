/**
 * Operator access in one place: every route of the operator API declares the permission it needs in its
 * route config (`config: { permission: 'devices.read' }`); one onRequest hook authenticates the caller and
 * checks it. A route without a declared permission fails at start-up, so none is left open by omission, and
 * the OpenAPI document shows each route's permission (`x-permission` and its description).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { FleetError } from '../core/errors.js';
import type { Permission } from '../core/permissions.js';
import { DEFAULT_SESSION_POLICY, type SessionPolicy } from '../core/sign-in-policy.js';
import type { ApiToken } from '../store/store.js';
import { authenticatedToken } from './auth.js';
import type { ServerContext } from './context.js';
import { type Principal, principalOfToken } from './principal.js';
import { checkCsrf, sessionSecretOf } from './sessions/session-cookie.js';
import { principalOfSession } from './sessions/session-principal.js';
import type { StreamTickets } from './stream-tickets.js';

/**
 * What a route needs: one permission; one per value of a path parameter (a rollout command: pausing needs
 * another permission than approving); or `authenticated` (any principal, e.g. whoami).
 */
export type RoutePermission =
  | Permission
  | 'authenticated'
  | { param: string; permissions: Readonly<Record<string, Permission>> };

declare module 'fastify' {
  interface FastifyContextConfig {
    permission?: RoutePermission;
  }
}

/** The permission a request needs, from its route's declaration and (for a per-parameter one) its path. */
function neededPermission(declared: RoutePermission, request: FastifyRequest): Permission | 'authenticated' {
  if (typeof declared === 'string') return declared;
  const value = (request.params as Record<string, string> | undefined)?.[declared.param] ?? '';
  const needed = Object.hasOwn(declared.permissions, value) ? declared.permissions[value] : undefined;
  // A value the route does not know is left to the route's own validation (a 400 naming the choices).
  return needed ?? 'authenticated';
}

/** How a route's permission reads in the OpenAPI document. */
export function describePermission(declared: RoutePermission): string {
  if (typeof declared === 'string') return declared;
  const byPermission = new Map<string, string[]>();
  for (const [value, permission] of Object.entries(declared.permissions)) {
    byPermission.set(permission, [...(byPermission.get(permission) ?? []), value]);
  }
  return [...byPermission].map(([p, values]) => `${p} (${declared.param} ${values.join(', ')})`).join('; ');
}

function declareInOpenApi(route: RouteOptions): void {
  const declared = route.config?.permission;
  if (declared === undefined) {
    throw new Error(
      `operator route ${String(route.method)} ${route.url} declares no permission: add config.permission`,
    );
  }
  const text = describePermission(declared);
  const schema = (route.schema ?? {}) as Record<string, unknown>;
  const said = typeof schema.description === 'string' ? `${schema.description}\n\n` : '';
  route.schema = {
    ...schema,
    description: `${said}Permission: \`${text}\``,
    'x-permission': text,
  } as NonNullable<RouteOptions['schema']>;
}

/** The abuse limits around authentication (abuse/abuse-limits.ts): refuse a blocked address, count a failure. */
export interface AuthenticationGuard {
  refuseIfLimited(request: FastifyRequest, reply: FastifyReply): void;
  failed(request: FastifyRequest, reply: FastifyReply, error: unknown): never;
}

/**
 * The caller: its API token or, without an Authorization header, its dashboard session cookie (whose changes
 * must carry the CSRF token, checked once authenticated). A refusal is marked on the request, so the audit
 * trail tells it from a route's 401.
 */
async function authenticate(
  c: ServerContext,
  request: FastifyRequest,
  reply: FastifyReply,
  tickets: StreamTickets,
  guard: AuthenticationGuard,
  sessionPolicy: SessionPolicy,
): Promise<{ operator: ApiToken; principal: Principal }> {
  try {
    guard.refuseIfLimited(request, reply);
  } catch (error) {
    request.operatorRefused = true;
    throw error;
  }
  const sessionSecret = request.headers.authorization === undefined ? sessionSecretOf(request) : undefined;
  let found: { operator: ApiToken; principal: Principal };
  try {
    if (sessionSecret !== undefined) {
      const { session, principal } = await principalOfSession(c.store, sessionSecret, c.clock, sessionPolicy);
      const operator = {
        id: session.id,
        name: session.userName,
        role: principal.role,
        createdAt: session.createdAt,
      };
      found = { operator: { ...operator, signedIn: true }, principal };
    } else {
      const token = await authenticatedToken(c.store, request, tickets);
      // An expired token, or a disabled user's, is a failed authentication too.
      found = { operator: token, principal: await principalOfToken(c.store, token, c.clock) };
    }
  } catch (error) {
    request.operatorRefused = true;
    return guard.failed(request, reply, error);
  }
  if (sessionSecret !== undefined) checkCsrf(request, sessionSecret);
  return found;
}

/** Installs the access check on the operator API's plugin scope (app.ts): every route registered after it. */
export function installAccessControl(
  api: FastifyInstance,
  c: ServerContext,
  tickets: StreamTickets,
  guard: AuthenticationGuard = {
    refuseIfLimited: () => {},
    failed: (_r, _p, error) => {
      throw error;
    },
  },
  sessionPolicy: SessionPolicy = DEFAULT_SESSION_POLICY,
): void {
  api.decorateRequest('principal', null);
  api.addHook('onRoute', declareInOpenApi);
  api.addHook('onRequest', async (request, reply) => {
    const { operator, principal } = await authenticate(c, request, reply, tickets, guard, sessionPolicy);
    request.principal = principal;
    request.operator = {
      id: operator.id,
      name: operator.name,
      role: operator.role,
      createdAt: operator.createdAt,
      ...(operator.signedIn ? { signedIn: true } : {}),
    };
    const declared = request.routeOptions.config.permission;
    // Unmatched URLs (404) have no route config: authenticated callers get the not-found answer.
    if (declared === undefined) return;
    const needed = neededPermission(declared, request);
    if (needed === 'authenticated' || principal.permissions.has(needed)) return;
    throw new FleetError(
      'FORBIDDEN',
      `${request.method} ${request.routeOptions.url} needs the permission ${needed}, which role ${principal.role} ` +
        `(${principal.kind === 'session' ? 'user' : 'token'} ${principal.name}) does not have`,
      { permission: needed, role: principal.role },
    );
  });
}
