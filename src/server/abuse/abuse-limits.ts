/**
 * Abuse limits (docs/audit.md, "Abuse limits"), with @fastify/rate-limit counting on the server's clock
 * (clocked-rate-store.ts): enrollment per source address; the device API per credential (the hash of the
 * bearer credential, or the client certificate of the connection); and, on the operator API, a source address
 * whose authentication failed too often in a window gets 429 for the rest of it, valid token or not, so guessing
 * tokens gains nothing. Every refusal is 429 with `Retry-After` and the usual error body (RATE_LIMITED).
 * Counts live in each replica's memory and, for the keys that near their limit, in the store every second
 * (clocked-rate-store.ts), so replicas behind a load balancer share them.
 */
import { TLSSocket } from 'node:tls';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Clock } from '../../core/clock.js';
import { FleetError, isFleetError } from '../../core/errors.js';
import { hashSecret } from '../../registry/credentials.js';
import type { RateCountStore } from '../../store/rate-count-store.js';
import { ClockedRateStore } from './clocked-rate-store.js';

export interface Limit {
  max: number;
  windowMs: number;
}

export interface AbuseLimits {
  /** Enrollment requests per source address. */
  enrollment: Limit;
  /** Device API requests per device credential (or client certificate). */
  deviceApi: Limit;
  /** Failed operator authentications per source address before it is refused for the rest of the window. */
  authFailures: Limit;
}

export const DEFAULT_ABUSE_LIMITS: AbuseLimits = {
  enrollment: { max: 1_000, windowMs: 60_000 },
  // A device heartbeats every few minutes; 50 a second from one credential is a loop or an attack.
  deviceApi: { max: 3_000, windowMs: 60_000 },
  authFailures: { max: 20, windowMs: 60_000 },
};

/** The device-facing APIs: FleetD's own, the hawkBit DDI one (any tenant, for SWUpdate) and mender-client's. */
const DEVICE_ROUTE = /^\/(?:api\/device\/v1|api\/devices\/v1|[^/]+\/controller\/v1)\//;
const ENROLL_ROUTE = '/api/device/v1/enroll';

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

function limited(what: string, ttlMs: number): FleetError {
  return new FleetError('RATE_LIMITED', `too many ${what}; retry in ${seconds(ttlMs)} s (Retry-After)`);
}

/** A connection's client certificate, read once per TLS socket (its fingerprint keys the device's limit). */
const certificateKeys = new WeakMap<TLSSocket, string>();
function credentialKey(request: FastifyRequest): string {
  const header = request.headers.authorization;
  // The hash, never the credential: the key is kept in memory and may show in a heap dump.
  if (header) return `cred:${hashSecret(header)}`;
  const socket = request.raw.socket;
  if (socket instanceof TLSSocket) {
    let key = certificateKeys.get(socket);
    if (key === undefined) {
      key = `cert:${socket.getPeerCertificate()?.fingerprint256 ?? request.ip}`;
      certificateKeys.set(socket, key);
    }
    return key;
  }
  return `ip:${request.ip}`;
}

export interface OperatorGuard {
  /** Refuses (429) a source over its failure limit, before its token is even looked at. */
  refuseIfLimited(request: FastifyRequest, reply: FastifyReply): void;
  /** Counts a failed authentication of the source; past the limit the answer is 429 instead of `error`. */
  failed(request: FastifyRequest, reply: FastifyReply, error: unknown): never;
  /** Shares the counts with the other replicas now (a timer does it every second). */
  sync(): Promise<void>;
}

/** How often the counts are shared with the other replicas. */
const SYNC_EVERY_MS = 1_000;

export async function installAbuseLimits(
  app: FastifyInstance,
  clock: Clock,
  limits: AbuseLimits = DEFAULT_ABUSE_LIMITS,
  shared?: RateCountStore,
): Promise<OperatorGuard> {
  const store = new ClockedRateStore(clock);
  const sync = async () => {
    if (shared) await store.sync(shared);
  };
  if (shared) {
    let syncs = 0;
    const timer = setInterval(() => {
      // Every minute the windows that ended are forgotten.
      const prune = ++syncs % 60 === 0 ? shared.prune(clock.now()) : Promise.resolve(0);
      Promise.all([sync(), prune]).catch((error) =>
        app.log.warn({ err: error }, 'sharing rate-limit counts failed'),
      );
    }, SYNC_EVERY_MS);
    timer.unref();
    app.addHook('onClose', async () => clearInterval(timer));
  }
  await app.register(rateLimit, {
    global: false,
    store: class {
      constructor() {
        // biome-ignore lint/correctness/noConstructorReturn: the plugin builds its store with `new`; this one is shared.
        return store;
      }
    } as never,
    errorResponseBuilder: (request, context) =>
      limited(request.routeOptions.url === ENROLL_ROUTE ? 'enrollment requests' : 'requests', context.ttl),
  });
  const enrollment = app.rateLimit({
    max: limits.enrollment.max,
    timeWindow: limits.enrollment.windowMs,
    keyGenerator: (request) => `enroll:${request.ip}`,
  });
  const deviceApi = app.rateLimit({
    max: limits.deviceApi.max,
    timeWindow: limits.deviceApi.windowMs,
    keyGenerator: (request) => `device:${credentialKey(request)}`,
  });
  app.addHook('onRequest', async (request, reply) => {
    const route = request.routeOptions.url;
    if (route === ENROLL_ROUTE) return enrollment.call(app, request, reply);
    if (route && DEVICE_ROUTE.test(route)) return deviceApi.call(app, request, reply);
  });

  const failures = limits.authFailures;
  const keyOf = (request: FastifyRequest) => `authfail:${request.ip}`;
  const refuse = (reply: FastifyReply, ttl: number) => {
    reply.header('retry-after', seconds(ttl));
    return limited('failed authentications from this address', ttl);
  };
  app.decorate('abuseLimits', { sync });
  return {
    refuseIfLimited(request, reply) {
      const { current, ttl } = store.peek(keyOf(request));
      if (current >= failures.max) throw refuse(reply, ttl);
    },
    failed(request, reply, error) {
      // A malformed request (a token in the URL, say) is refused as such; only a wrong token is a failure.
      if (!isFleetError(error) || error.code !== 'UNAUTHENTICATED') throw error;
      const { current, ttl } = store.count(keyOf(request), failures.windowMs, failures.max);
      if (current > failures.max) throw refuse(reply, ttl);
      throw error;
    },
    sync,
  };
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The abuse limits; `sync()` shares their counts with the other replicas now. */
    abuseLimits: Pick<OperatorGuard, 'sync'>;
  }
}
