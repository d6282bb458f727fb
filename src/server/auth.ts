/** Who is calling: an operator with an API token, or a device with its own credential. */
import type { FastifyRequest } from 'fastify';
import { FleetError } from '../core/errors.js';
import { hashSecret, secretMatches, splitDeviceCredential } from '../registry/credentials.js';
import type { ApiToken, Store } from '../store/store.js';
import type { StreamTickets } from './stream-tickets.js';

export function bearer(request: FastifyRequest): string {
  const header = request.headers.authorization;
  const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  if (!match) throw new FleetError('UNAUTHENTICATED', 'missing "Authorization: Bearer <token>" header');
  return match[1]!;
}

const STREAM_PATH = '/api/v1/events/stream';

/**
 * The hash of the API token the caller presented: in the Authorization header or, on the event stream alone
 * (EventSource cannot set headers), as a stream ticket (stream-tickets.ts). Never the token itself in a URL:
 * URLs are kept by proxies, browsers and access logs.
 */
function presentedTokenHash(request: FastifyRequest, tickets: StreamTickets): string {
  const query = request.query as Record<string, unknown> | undefined;
  if (query && Object.hasOwn(query, 'access_token')) {
    throw new FleetError(
      'VALIDATION',
      'querystring.access_token: an API token in a URL is not accepted (URLs end up in logs); send ' +
        '"Authorization: Bearer <token>", or for the event stream a ticket from POST /api/v1/events/stream-ticket',
    );
  }
  const path = request.url.split('?', 1)[0];
  if (path === STREAM_PATH && !request.headers.authorization && typeof query?.ticket === 'string') {
    return tickets.redeem(query.ticket);
  }
  return hashSecret(bearer(request));
}

export async function authenticateOperator(
  store: Store,
  request: FastifyRequest,
  tickets: StreamTickets,
): Promise<ApiToken> {
  const token = await store.findApiToken(presentedTokenHash(request, tickets));
  if (!token) throw new FleetError('UNAUTHENTICATED', 'the API token is unknown or revoked');
  return token;
}

/** Returns the id of the device whose credential was presented. */
export async function authenticateDevice(store: Store, request: FastifyRequest): Promise<string> {
  const parts = splitDeviceCredential(bearer(request));
  const stored = parts && (await store.credentialHash(parts.deviceId));
  if (!parts || !stored || !secretMatches(parts.secret, stored)) {
    throw new FleetError('UNAUTHENTICATED', 'the device credential is unknown, revoked or wrong');
  }
  return parts.deviceId;
}

export const actorOf = (token: ApiToken) => `api:${token.name}`;

declare module 'fastify' {
  interface FastifyRequest {
    operator: ApiToken | null;
  }
}

/** The operator authenticated by the API's onRequest hook. */
export function operatorOf(request: FastifyRequest): ApiToken {
  if (!request.operator) throw new FleetError('UNAUTHENTICATED', 'this endpoint needs an API token');
  return request.operator;
}
