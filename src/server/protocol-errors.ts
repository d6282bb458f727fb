/**
 * The answers the HTTP layer gives before any route runs — Node's parser (the server's 'clientError'), the
 * router (bad percent-encoding, over-long path segments), `Expect:`, a missing Host, a server shutting down —
 * in the same `{"error":{"code","message"}}` shape as every other answer, so a client reads one shape
 * whatever refused its request. Left to themselves, Node and Fastify answer these with bodies of their own
 * or with none.
 */
import { type Server, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyHttpOptions, FastifyInstance, FastifyReply } from 'fastify';
import { FleetError } from '../core/errors.js';
import { errorJson } from '../protocol/common.js';
import { httpStatus } from './errors.js';

/**
 * Longest path segment the router matches. Fastify's default (100) is shorter than a device id may be (128,
 * more once percent-encoded); the schemas bound each parameter, this only stops pathological URLs.
 */
export const MAX_PARAM_LENGTH = 1024;

/** Node's parser errors (llhttp's `HPE_*` and Node's own timeouts) as FleetD errors. */
export function fromClientError(error: Error & { code?: string; reason?: string }): FleetError {
  switch (error.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new FleetError(
        'HEADERS_TOO_LARGE',
        'the request line and headers are larger than 16 KB: shorten the URL (a long filter, say) or the headers',
      );
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'ERR_HTTP_HEADERS_TIMEOUT':
      return new FleetError('REQUEST_TIMEOUT', 'the request did not arrive in time');
    default:
      // llhttp's reasons are fixed texts ("Invalid header value char"), never the request's own bytes.
      return new FleetError(
        'MALFORMED_REQUEST',
        `the request is not valid HTTP/1.1${error.reason ? `: ${error.reason}` : ''}`,
      );
  }
}

function rawAnswer(error: FleetError): string {
  const status = httpStatus(error.code);
  const body = JSON.stringify(errorJson(error));
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
    'Content-Type: application/json; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    `Connection: close\r\n\r\n${body}`
  );
}

function onClientError(error: Error & { code?: string }, socket: Duplex): void {
  // A reset connection has no one to answer; nor has one whose response already started (pipelining).
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (socket.writable && !inFlight?.headersSent) socket.write(rawAnswer(fromClientError(error)));
  socket.destroy();
}

function onFrameworkError(error: FastifyError, reply: FastifyReply): void {
  const known =
    error.code === 'FST_ERR_MAX_PARAM_LENGTH'
      ? new FleetError('URI_TOO_LONG', `a path segment is longer than ${MAX_PARAM_LENGTH} characters`)
      : error.code === 'FST_ERR_BAD_URL'
        ? new FleetError('MALFORMED_REQUEST', 'the URL path has invalid percent-encoding or is not UTF-8')
        : new FleetError('INTERNAL', 'internal error; see the server log');
  if (known.code === 'INTERNAL') reply.log.error({ err: error }, 'unhandled framework error');
  void reply.status(httpStatus(known.code)).send(errorJson(known));
}

/** The Fastify construction options through which these answers go. */
export const protocolOptions = {
  clientErrorHandler: onClientError,
  frameworkErrors: (error, _request, reply) => onFrameworkError(error, reply),
  routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
  // Node would answer a Host-less HTTP/1.1 request with an empty 400 itself: the onRequest hook below does.
  http: { requireHostHeader: false },
  // Fastify's own 503 while closing has its own body: the onRequest hook below sheds the load instead.
  return503OnClosing: false,
} satisfies FastifyHttpOptions<Server>;

/** Hooks and listeners that need the built app: `Expect:`, Host, and refusing requests while closing. */
export function installProtocolErrors(app: FastifyInstance): void {
  app.server.on('checkExpectation', (_request, response) => {
    const error = new FleetError('EXPECTATION_FAILED', 'only "Expect: 100-continue" is supported');
    response.writeHead(httpStatus(error.code), { 'content-type': 'application/json; charset=utf-8' });
    response.end(JSON.stringify(errorJson(error)));
  });
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  // A callback hook, not an async one: no promise per request on the heartbeat's path.
  app.addHook('onRequest', (request, reply, done) => {
    if (closing) {
      reply.header('connection', 'close');
      done(
        new FleetError(
          'SHUTTING_DOWN',
          'the server is shutting down; retry in a moment (or on another replica)',
        ),
      );
    } else if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) {
      done(new FleetError('MALFORMED_REQUEST', 'an HTTP/1.1 request must carry a Host header'));
    } else {
      done();
    }
  });
}
