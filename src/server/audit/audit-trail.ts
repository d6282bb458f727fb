/**
 * What goes into the audit log from the HTTP layer (docs/audit.md), in two hooks rather than in each route:
 * every operator request that may change something (POST, PUT, PATCH, DELETE under /api/v1) once its answer is
 * known, and every failed authentication (a 401, or a 429 of the failure limit) through the AuthFailureWatch.
 * Kept: who (the token's actor and role), the source address, the method and route pattern, the ids in the
 * route's parameters and the id of what a create made, the status, the request id, and what the change turned
 * its target from and into when the route says (`auditChange`: states and names, small). Never a body, a
 * header or a query string: tokens, passwords, enrollment secrets and credentials travel there.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { actorOf } from '../auth.js';
import type { ServerContext } from '../context.js';
import type { AuthFailureWatch } from './auth-failure-watch.js';

const CHANGES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** Answers longer than this are not read for the id of what they created. */
const READ_CREATED_ID_UP_TO = 64 * 1024;

function targetOf(request: FastifyRequest, status: number, payload: unknown): Record<string, string> {
  const target: Record<string, string> = {};
  const params = request.params as Record<string, unknown> | undefined;
  for (const [key, value] of Object.entries(params ?? {})) {
    if (typeof value === 'string') target[key] = value;
  }
  if (status < 300 && typeof payload === 'string' && payload.length <= READ_CREATED_ID_UP_TO) {
    try {
      const id = (JSON.parse(payload) as { id?: unknown } | null)?.id;
      if (typeof id === 'string' && target.id === undefined) target.created = id;
    } catch {
      // Not JSON: nothing created to name.
    }
  }
  return target;
}

const pathOf = (request: FastifyRequest) => request.url.split('?', 1)[0] ?? '';

/** How many device ids an entry names at most when a change reaches many devices (it keeps the count too). */
export const AUDITED_DEVICES = 100;

/** What a change turned its target from and into, for its audit entry; a route calls it once it is made. */
export function auditChange(request: FastifyRequest, before: unknown, after: unknown): void {
  request.auditChange = { before, after };
}

/** Audits the operator API's changes; installed inside its scope, after its authentication hook. */
export function auditOperatorChanges(operatorApi: FastifyInstance, c: ServerContext): void {
  operatorApi.addHook('onSend', async (request, reply, payload) => {
    const operator = request.operator;
    if (!CHANGES.has(request.method) || operator === null) return payload;
    const route = request.routeOptions.url ?? pathOf(request);
    await c.store.audit
      .append({
        at: c.clock.now(),
        actor: actorOf(operator),
        role: operator.role ?? null,
        source: request.ip,
        action: `${request.method} ${route}`,
        target: targetOf(request, reply.statusCode, payload),
        outcome: reply.statusCode,
        before: request.auditChange?.before ?? null,
        after: request.auditChange?.after ?? null,
        requestId: request.id,
        data: {},
      })
      // The change is made: its answer goes out even when its audit entry cannot be written (logged loudly).
      .catch((error: unknown) =>
        request.log.error({ err: error }, 'could not write the audit entry of a change'),
      );
    return payload;
  });
}

/** Sends every failed authentication (401, or 429 from the failure limit) of either API to the watch. */
export function watchFailedAuthentication(
  app: FastifyInstance,
  watch: AuthFailureWatch,
  flushMs = 10_000,
): void {
  // Windows close on the next failure or on this timer, whichever comes first; only a listening server runs it.
  let timer: NodeJS.Timeout | undefined;
  app.addHook('onListen', async () => {
    timer ??= setInterval(() => void watch.flush(), flushMs).unref();
  });
  app.addHook('onClose', async () => {
    clearInterval(timer);
    await watch.flush(Number.POSITIVE_INFINITY);
  });
  app.addHook('onSend', async (request, reply, payload) => {
    const status = reply.statusCode;
    const limitedAfterFailures = status === 429 && request.operatorRefused === true;
    if (status !== 401 && !limitedAfterFailures) return payload;
    const path = pathOf(request);
    await watch.failed({
      source: request.ip,
      api: path.startsWith('/api/device/') ? 'device' : 'operator',
      method: request.method,
      path,
      reason: status === 401 ? 'UNAUTHENTICATED' : 'RATE_LIMITED',
      outcome: status,
      requestId: request.id,
    });
    return payload;
  });
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Refused by the operator API before authentication (its source failed too often). */
    operatorRefused?: boolean;
    /** What the change turned its target from and into (`auditChange`). */
    auditChange?: { before: unknown; after: unknown };
  }
}
