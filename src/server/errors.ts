/** The one place where error codes become HTTP statuses, and every failure becomes `{error:{code,message}}`. */
import type { FastifyError, FastifyInstance } from 'fastify';
import { type ErrorCode, FleetError } from '../core/errors.js';
import { errorJson } from '../protocol/common.js';
import { storageFull } from './storage-full.js';

const STATUS: Record<ErrorCode, number> = {
  VALIDATION: 400,
  MALFORMED_JSON: 400,
  FILTER_SYNTAX: 400,
  BAD_CURSOR: 400,
  UNAUTHENTICATED: 401,
  ENROLLMENT_INVALID: 401,
  CERTIFICATE_REQUIRED: 401,
  FORBIDDEN: 403,
  DEVICE_DECOMMISSIONED: 403,
  DEVICE_NOT_FOUND: 404,
  NOT_FOUND: 404,
  DEVICE_EXISTS: 409,
  CONFLICT: 409,
  TRANSITION_NOT_ALLOWED: 409,
  LEASE_LOST: 409,
  OPEN_UPDATE_EXISTS: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  STORAGE_FULL: 507,
  INTERNAL: 500,
  // What the HTTP layer refuses before a route runs (protocol-errors.ts).
  MALFORMED_REQUEST: 400,
  REQUEST_TIMEOUT: 408,
  PRECONDITION_FAILED: 412,
  URI_TOO_LONG: 414,
  RANGE_NOT_SATISFIABLE: 416,
  EXPECTATION_FAILED: 417,
  HEADERS_TOO_LARGE: 431,
  SHUTTING_DOWN: 503,
  CERTIFICATE_INVALID: 400,
  CSR_INVALID: 400,
  CSR_DEVICE_MISMATCH: 400,
  ENROLLMENT_REJECTED: 403,
  ADMISSION_KEY_MISMATCH: 403,
  APPROVAL_PENDING: 403,
  RATE_LIMITED: 429,
};

export function httpStatus(code: ErrorCode): number {
  return STATUS[code];
}

/** Fastify's own errors (bad JSON, oversize body, schema validation) carried over to our codes. */
function fromFastify(error: FastifyError): FleetError | undefined {
  if (error.validation) {
    const context = error.validationContext ?? 'request';
    const details = error.validation.map((v) => {
      const path = `${context}${v.instancePath.replace(/\//g, '.')}`;
      const extra = v.params as Record<string, unknown>;
      if (v.keyword === 'additionalProperties')
        return `${path}: unknown field "${String(extra.additionalProperty)}"`;
      if (v.keyword === 'required') return `${path}: missing field "${String(extra.missingProperty)}"`;
      return `${path} ${v.message ?? 'is invalid'}`;
    });
    return new FleetError('VALIDATION', details.join('; '));
  }
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new FleetError('MALFORMED_JSON', `request body is not valid JSON: ${error.message}`);
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new FleetError('PAYLOAD_TOO_LARGE', 'request body is larger than this endpoint accepts');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new FleetError('UNSUPPORTED_MEDIA_TYPE', 'send the request body as application/json');
    default:
      if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
        return new FleetError(codeForStatus(error.statusCode), error.message);
      }
      return undefined;
  }
}

/** A plugin's own 4xx (a static file's 404 or 416, say) keeps its status under the code that names it. */
const CODE_OF_STATUS: Partial<Record<number, ErrorCode>> = {
  401: 'UNAUTHENTICATED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  408: 'REQUEST_TIMEOUT',
  409: 'CONFLICT',
  412: 'PRECONDITION_FAILED',
  413: 'PAYLOAD_TOO_LARGE',
  414: 'URI_TOO_LONG',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  416: 'RANGE_NOT_SATISFIABLE',
  417: 'EXPECTATION_FAILED',
  431: 'HEADERS_TOO_LARGE',
  429: 'RATE_LIMITED',
};
const codeForStatus = (status: number): ErrorCode => CODE_OF_STATUS[status] ?? 'VALIDATION';

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const known = error instanceof FleetError ? error : (fromFastify(error) ?? storageFull(error));
    if (known?.code === 'STORAGE_FULL') request.log.error({ err: error }, known.message);
    if (!known) {
      request.log.error({ err: error }, 'unhandled error');
      return reply
        .status(500)
        .send({ error: { code: 'INTERNAL', message: 'internal error; see the server log' } });
    }
    return reply.status(httpStatus(known.code)).send(errorJson(known));
  });
  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({
      error: { code: 'NOT_FOUND', message: `no route for ${request.method} ${request.url.split('?')[0]}` },
    }),
  );
}
