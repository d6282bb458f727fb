/**
 * Errors are values with a stable code; the server maps codes to HTTP status in one place
 * and the CLI prints the message on one line.
 */
export type ErrorCode =
  | 'VALIDATION'
  | 'MALFORMED_JSON'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'INTERNAL'
  | 'FILTER_SYNTAX'
  | 'BAD_CURSOR'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'DEVICE_NOT_FOUND'
  | 'DEVICE_DECOMMISSIONED'
  | 'DEVICE_EXISTS'
  | 'ENROLLMENT_INVALID'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'PAYLOAD_TOO_LARGE'
  | 'STORAGE_FULL'
  | 'TRANSITION_NOT_ALLOWED'
  // A replica's rollout decision refused because another replica holds the rollout's lease now.
  | 'LEASE_LOST'
  // A device holds one open update; another was written at the same time and could not be superseded.
  | 'OPEN_UPDATE_EXISTS'
  // A device without a client certificate on a server that accepts certificates only (`--device-auth mtls`).
  | 'CERTIFICATE_REQUIRED'
  // What the HTTP layer refuses before a route runs (src/server/protocol-errors.ts).
  | 'MALFORMED_REQUEST'
  | 'REQUEST_TIMEOUT'
  | 'PRECONDITION_FAILED'
  | 'URI_TOO_LONG'
  | 'RANGE_NOT_SATISFIABLE'
  | 'EXPECTATION_FAILED'
  | 'HEADERS_TOO_LARGE'
  | 'SHUTTING_DOWN'
  // X.509 (src/pki/): a certificate, key or certificate request that cannot be used.
  | 'CERTIFICATE_INVALID'
  | 'CSR_INVALID'
  // A certificate request whose subject names another device than the one enrolling.
  | 'CSR_DEVICE_MISMATCH'
  // The approval queue: an operator rejected the device; another requester asked first for the same id.
  | 'ENROLLMENT_REJECTED'
  | 'ADMISSION_KEY_MISMATCH'
  // A device of a factory CA marked --approve, waiting for an operator's decision.
  | 'APPROVAL_PENDING'
  // Too many requests (enrollment per address, a device credential, failed authentications): 429 + Retry-After.
  | 'RATE_LIMITED';

/**
 * `options.cause` keeps the error this one stands for (a database's, a file system's, a parser's), as
 * Fastify's errors do: the caller sees the code and message, the server log the whole chain.
 */
export class FleetError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'FleetError';
  }
}

export const isFleetError = (e: unknown): e is FleetError => e instanceof FleetError;
