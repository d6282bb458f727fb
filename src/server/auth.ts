/**
 * Who is calling: an operator with an API token, or a device with its client certificate (mutual TLS) or its
 * own credential. Every refusal of a device is an event (`device.auth_refused`) and a 4xx, never a crash.
 */
import { type DetailedPeerCertificate, TLSSocket } from 'node:tls';
import type { FastifyRequest } from 'fastify';
import { type ErrorCode, FleetError, isFleetError } from '../core/errors.js';
import { certificateFingerprint } from '../pki/describe.js';
import { hashSecret, secretMatches, splitDeviceCredential } from '../registry/credentials.js';
import type { TokenInfo } from '../store/principals.js';
import type { ApiToken, Store } from '../store/store.js';
import { type ServerContext, timeContext } from './context.js';
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

/** The live token the caller presented, with its role, scope and expiry (checked by principal.ts). */
export async function authenticatedToken(
  store: Store,
  request: FastifyRequest,
  tickets: StreamTickets,
): Promise<TokenInfo> {
  const token = await store.principals.findToken(presentedTokenHash(request, tickets));
  if (!token) throw new FleetError('UNAUTHENTICATED', 'the API token is unknown or revoked');
  return token;
}

/**
 * How a device request says who it is: the client certificate its TLS connection presented (verified by TLS
 * against the CAs the listener trusts; which device it is, and whether it is revoked, the store says), or a
 * bearer credential naming its device.
 */
export type DeviceProof =
  | {
      method: 'certificate';
      fingerprint: string;
      /** The subject CN: the device the certificate names. */
      names: string | null;
    }
  | { method: 'credential'; deviceId: string; secret: string };

const CREDENTIAL_REFUSED = 'the device credential is unknown, revoked or wrong';
const CERTIFICATE_REFUSED = 'the client certificate is unknown to this server or revoked';

/** TLS's reasons for not verifying a client certificate, in words a device's operator can act on. */
const TLS_REASONS: Record<string, string> = {
  CERT_HAS_EXPIRED: 'the client certificate has expired',
  CERT_NOT_YET_VALID: 'the client certificate is not yet valid',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'the client certificate is self-signed',
  SELF_SIGNED_CERT_IN_CHAIN: 'the client certificate chains to a self-signed CA this server does not trust',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'the client certificate was issued by a CA this server does not trust',
  UNABLE_TO_GET_ISSUER_CERT: 'the client certificate was issued by a CA this server does not trust',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'the client certificate was issued by a CA this server does not trust',
  CERT_SIGNATURE_FAILURE: 'the client certificate signature does not verify',
  CERT_REVOKED: 'the client certificate is revoked',
};

/** Records a refused device request as an event (never a secret in it) and throws the refusal. */
async function refuse(
  c: ServerContext,
  request: FastifyRequest,
  refusal: {
    code: ErrorCode;
    reason: string;
    message: string;
    method: DeviceProof['method'];
    deviceId?: string;
  },
): Promise<never> {
  await c.store
    .appendEvents([
      {
        at: c.clock.now(),
        type: 'device.auth_refused',
        deviceId: refusal.deviceId ?? null,
        rolloutId: null,
        actor: null,
        reason: refusal.message,
        data: { reason: refusal.reason, method: refusal.method, path: request.url.split('?', 1)[0] },
      },
    ])
    // The refusal stands whether or not its event could be written.
    .catch((error: unknown) =>
      request.log.error({ err: error }, 'could not record a refused device request'),
    );
  throw new FleetError(refusal.code, refusal.message);
}

/**
 * A connection's client certificate and its fingerprint, read once per connection: a kept-alive device sends
 * many requests over one TLS session, and reading and hashing the chain on each was a fifth of the server's
 * time under mutual-TLS load. The certificate cannot change on the connection: the listener refuses
 * renegotiation (tls.ts).
 */
const peers = new WeakMap<TLSSocket, { certificate: DetailedPeerCertificate; fingerprint: string } | null>();

function peerOf(socket: TLSSocket) {
  let peer = peers.get(socket);
  if (peer === undefined) {
    const certificate = socket.getPeerCertificate(true);
    peer = certificate?.raw ? { certificate, fingerprint: certificateFingerprint(certificate.raw) } : null;
    peers.set(socket, peer);
  }
  return peer;
}

/** The verified client certificate of a request over TLS, or a refusal when TLS could not verify it. */
async function certificateProof(c: ServerContext, request: FastifyRequest): Promise<DeviceProof | undefined> {
  const socket = request.raw.socket;
  if (!(socket instanceof TLSSocket)) return undefined;
  const peer = peerOf(socket);
  if (!peer) return undefined;
  const { certificate } = peer;
  if (!socket.authorized) {
    const error = socket.authorizationError as unknown;
    const code = typeof error === 'string' ? error : ((error as { code?: string } | null)?.code ?? 'UNKNOWN');
    const words = TLS_REASONS[code] ?? 'the client certificate could not be verified';
    return refuse(c, request, {
      code: 'UNAUTHENTICATED',
      reason: code,
      message: `${words} (${code})`,
      method: 'certificate',
    });
  }
  await admitFactoryCertificate(c, request, certificate);
  const cn = certificate.subject?.CN;
  return {
    method: 'certificate',
    fingerprint: peer.fingerprint,
    names: typeof cn === 'string' ? cn : null,
  };
}

/**
 * A certificate from a trusted factory CA registers its device on first contact (just-in-time); one from a CA
 * untrusted since its connection was made is refused, as a new connection would be.
 */
async function admitFactoryCertificate(
  c: ServerContext,
  request: FastifyRequest,
  certificate: DetailedPeerCertificate,
): Promise<void> {
  const origin = c.factoryCas.originOf(certificate);
  if (origin?.kind === 'untrusted') {
    await refuse(c, request, {
      code: 'UNAUTHENTICATED',
      reason: 'ca_untrusted',
      message: 'the client certificate was issued by a CA this server no longer trusts',
      method: 'certificate',
    });
  }
  if (origin?.kind !== 'factory') return;
  try {
    await c.factoryCas.registerIfNew(certificate.raw, origin, timeContext(c));
  } catch (error) {
    if (!isFleetError(error)) throw error;
    await refuse(c, request, {
      // Waiting for approval is its own answer, so a device (or its operator) can tell it from a refusal.
      code: error.code === 'APPROVAL_PENDING' ? 'APPROVAL_PENDING' : 'FORBIDDEN',
      reason: `factory_registration_refused:${error.code.toLowerCase()}`,
      message: error.message,
      method: 'certificate',
    });
  }
}

/** What a device request presents to prove who it is (UNAUTHENTICATED, CERTIFICATE_REQUIRED). */
export async function deviceProof(c: ServerContext, request: FastifyRequest): Promise<DeviceProof> {
  const certified = await certificateProof(c, request);
  if (certified) return certified;
  if (c.deviceAuth === 'mtls') {
    return refuse(c, request, {
      code: 'CERTIFICATE_REQUIRED',
      reason: 'certificate_required',
      message:
        'this server accepts devices by client certificate only (--device-auth mtls): connect over TLS with the ' +
        'certificate FleetD issued at enrollment',
      method: 'credential',
    });
  }
  const parts = splitDeviceCredential(bearer(request));
  if (!parts) throw new FleetError('UNAUTHENTICATED', CREDENTIAL_REFUSED);
  return { method: 'credential', ...parts };
}

/** Refuses, as an event and a 401, a certificate the store does not (or no longer) know as a live one. */
export function refuseCertificate(c: ServerContext, request: FastifyRequest): Promise<never> {
  return refuse(c, request, {
    code: 'UNAUTHENTICATED',
    reason: 'certificate_unknown_or_revoked',
    message: CERTIFICATE_REFUSED,
    method: 'certificate',
  });
}

/** A device may only act as itself: a request naming another device than its proof is refused (403, event). */
export async function mustActAsItself(
  c: ServerContext,
  request: FastifyRequest,
  proof: DeviceProof,
  named: string,
): Promise<void> {
  const own = proof.method === 'certificate' ? proof.names : proof.deviceId;
  if (own === named) return;
  const holder = proof.method === 'certificate' ? 'client certificate' : 'credential';
  await refuse(c, request, {
    code: 'FORBIDDEN',
    reason: 'other_device',
    message: `this ${holder} belongs to ${own ?? 'no device'}, not ${named}; a device may only act as itself`,
    method: proof.method,
    ...(own === null ? {} : { deviceId: own }),
  });
}

/** Returns the id of the device whose certificate or credential the request presented. */
export async function authenticateDevice(c: ServerContext, request: FastifyRequest): Promise<string> {
  const proof = await deviceProof(c, request);
  if (proof.method === 'certificate') {
    return (await c.store.certificates.deviceOf(proof.fingerprint)) ?? refuseCertificate(c, request);
  }
  const stored = await c.store.credentialHash(proof.deviceId);
  if (!stored || !secretMatches(proof.secret, stored))
    throw new FleetError('UNAUTHENTICATED', CREDENTIAL_REFUSED);
  return proof.deviceId;
}

export const actorOf = (token: ApiToken) => `${token.signedIn ? 'user' : 'api'}:${token.name}`;

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
