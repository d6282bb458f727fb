/** Who is calling: an operator with an API token, or a device with its own credential. */
import type { FastifyRequest } from 'fastify';
import { FleetError } from '../core/errors.js';
import { hashSecret, secretMatches, splitDeviceCredential } from '../registry/credentials.js';
import type { ApiToken, Store } from '../store/store.js';

export function bearer(request: FastifyRequest): string {
  const header = request.headers.authorization;
  const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  if (!match) throw new FleetError('UNAUTHENTICATED', 'missing "Authorization: Bearer <token>" header');
  return match[1]!;
}

/** EventSource cannot send headers: the event stream alone also takes the token as `?access_token=`. */
function operatorToken(request: FastifyRequest): string {
  const query = request.query as Record<string, unknown> | undefined;
  if (!request.headers.authorization && request.url.startsWith('/api/v1/events/stream')) {
    if (typeof query?.access_token === 'string') return query.access_token;
  }
  return bearer(request);
}

export async function authenticateOperator(store: Store, request: FastifyRequest): Promise<ApiToken> {
  const token = await store.findApiToken(hashSecret(operatorToken(request)));
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
