/**
 * Who an operator request comes from: the API token it presents (the first-start admin token is one), with
 * the permissions of its role and the device scope it is limited to. Resolved once per request by the
 * access hook (access.ts); routes read it, never the token.
 */
import type { FastifyRequest } from 'fastify';
import type { Clock } from '../core/clock.js';
import { FleetError } from '../core/errors.js';
import { type FilterNode, parseFilter } from '../core/filter/index.js';
import { BUILT_IN_ROLES, isPermission, type Permission } from '../core/permissions.js';
import type { TokenInfo } from '../store/principals.js';
import type { Store } from '../store/store.js';

export interface Principal {
  kind: 'token' | 'session';
  id: string;
  name: string;
  role: string;
  permissions: ReadonlySet<Permission>;
  /** The scope's text as stored, and parsed; null/undefined: every device. */
  scope: string | null;
  scopeFilter: FilterNode | undefined;
  expiresAt: number | null;
}

/** A token's last use is written at most this often: a CI job's thousand calls cost one write a minute. */
const LAST_USE_GRANULARITY_MS = 60_000;

/** The permissions of a role, built-in or custom; a role deleted or unknown grants nothing. */
export async function permissionsOf(store: Store, role: string): Promise<Set<Permission>> {
  const builtIn = Object.hasOwn(BUILT_IN_ROLES, role) ? BUILT_IN_ROLES[role] : undefined;
  if (builtIn) return new Set(builtIn);
  const custom = await store.principals.findRole(role);
  return new Set((custom?.permissions ?? []).filter(isPermission));
}

/** The principal of a stored token, or a refusal when it has expired. */
export async function principalOfToken(store: Store, token: TokenInfo, clock: Clock): Promise<Principal> {
  const now = clock.now();
  if (token.expiresAt !== null && token.expiresAt <= now) {
    throw new FleetError(
      'UNAUTHENTICATED',
      `the API token ${token.name} expired at ${new Date(token.expiresAt).toISOString()}`,
    );
  }
  // Decided on the row just read, so most requests write nothing (an UPDATE of no row still takes SQLite's
  // write lock); the store's own condition keeps two replicas from both writing.
  if (token.lastUsedAt === null || token.lastUsedAt <= now - LAST_USE_GRANULARITY_MS) {
    await store.principals.touchToken(token.id, now, LAST_USE_GRANULARITY_MS);
  }
  return {
    kind: 'token',
    id: token.id,
    name: token.name,
    role: token.role,
    permissions: await permissionsOf(store, token.role),
    scope: token.scope,
    scopeFilter: token.scope === null ? undefined : parseFilter(token.scope),
    expiresAt: token.expiresAt,
  };
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

/** The principal the access hook authenticated. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new FleetError('UNAUTHENTICATED', 'this endpoint needs an API token');
  return request.principal;
}
