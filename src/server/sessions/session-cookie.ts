/**
 * The dashboard's session cookie and its CSRF token. The cookie carries the session's secret: HttpOnly (no
 * script reads it), SameSite=Strict (no other site's page sends it), Secure when the request came over TLS,
 * and without Max-Age, so it ends with the browser too. The server keeps the secret's hash only.
 *
 * A change made with the cookie must also carry `X-CSRF-Token`: an HMAC of the session's secret, which the
 * sign-in answer and GET /api/v1/session give to the dashboard's script. Another site can make a browser send
 * the cookie (older browsers ignore SameSite) but cannot read that answer, so it cannot send the header.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type {} from '@fastify/cookie';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { FleetError } from '../../core/errors.js';

export const SESSION_COOKIE = 'fleetd_session';
export const CSRF_HEADER = 'x-csrf-token';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The session secret the request's cookie carries, if any. */
export function sessionSecretOf(request: FastifyRequest): string | undefined {
  const value = request.cookies?.[SESSION_COOKIE];
  return typeof value === 'string' && value.startsWith('fld_session_') ? value : undefined;
}

export function setSessionCookie(request: FastifyRequest, reply: FastifyReply, secret: string): void {
  reply.setCookie(SESSION_COOKIE, secret, {
    path: '/',
    httpOnly: true,
    sameSite: 'strict',
    secure: request.protocol === 'https',
  });
}

export function clearSessionCookie(request: FastifyRequest, reply: FastifyReply): void {
  reply.clearCookie(SESSION_COOKIE, {
    path: '/',
    httpOnly: true,
    sameSite: 'strict',
    secure: request.protocol === 'https',
  });
}

/** The CSRF token of a session: derived from its secret, so nothing more is stored and it lives as long. */
export function csrfTokenOf(secret: string): string {
  return createHmac('sha256', secret).update('fleetd csrf token').digest('base64url');
}

/** Refuses (403) a change made with the session cookie without the session's CSRF token. */
export function checkCsrf(request: FastifyRequest, secret: string): void {
  if (SAFE_METHODS.has(request.method)) return;
  const sent = request.headers[CSRF_HEADER];
  const expected = Buffer.from(csrfTokenOf(secret));
  const given = Buffer.from(typeof sent === 'string' ? sent : '');
  if (given.length === expected.length && timingSafeEqual(given, expected)) return;
  throw new FleetError(
    'FORBIDDEN',
    `a change made with a dashboard session needs the ${CSRF_HEADER} header from GET /api/v1/session ` +
      '(scripts and the CLI use an API token instead)',
  );
}
