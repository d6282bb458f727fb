/**
 * Dashboard sign-in (docs/access.md, "Dashboard sign-in"): POST /session signs in with a name and password
 * and sets the session cookie; it is public, outside the access hook. GET /session says who is signed in and
 * gives the CSRF token; DELETE /session signs out. Both are operator routes: the access hook authenticates
 * the cookie (and checks the CSRF token of the DELETE).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { FleetError } from '../../core/errors.js';
import { SessionJson, SignInBody } from '../../protocol/access.js';
import { withErrors } from '../../protocol/common.js';
import type { AuthenticationGuard } from '../access.js';
import type { ServerContext } from '../context.js';
import { principalOf } from '../principal.js';
import { type SignInPolicies, signInWithPassword } from '../sessions/password-sign-in.js';
import {
  clearSessionCookie,
  csrfTokenOf,
  sessionSecretOf,
  setSessionCookie,
} from '../sessions/session-cookie.js';
import { principalOfSession } from '../sessions/session-principal.js';
import { whoamiJson } from './principals.js';

/** The public sign-in route, registered beside the operator API (not behind its access hook). */
export const signInRoutes =
  (
    c: ServerContext,
    guard: AuthenticationGuard,
    policies: SignInPolicies,
    oidc: boolean,
  ): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/session/options',
      {
        schema: {
          summary: 'How to sign in to this server: password, and OpenID Connect when configured',
          tags: ['access'],
          security: [],
          // Public, before any sign-in: the OpenAPI document says so where operator routes name a permission.
          'x-permission': 'none (public)',
          response: withErrors({ 200: Type.Object({ password: Type.Boolean(), oidc: Type.Boolean() }) }),
        },
      },
      async () => ({ password: true, oidc }),
    );

    app.post(
      '/session',
      {
        schema: {
          summary: 'Sign in to the dashboard with a user name and password: sets an HttpOnly session cookie',
          tags: ['access'],
          security: [],
          // Public, before any sign-in: the OpenAPI document says so where operator routes name a permission.
          'x-permission': 'none (public)',
          body: SignInBody,
          response: withErrors({ 200: SessionJson }),
        },
      },
      async (request, reply) => {
        const { secret } = await signInWithPassword(c, request, reply, guard, policies, request.body);
        const { principal } = await principalOfSession(c.store, secret, c.clock, policies.session);
        setSessionCookie(request, reply, secret);
        return { principal: whoamiJson(principal), csrf_token: csrfTokenOf(secret) };
      },
    );
  };

/** The signed-in session's own routes, inside the operator API. */
export const sessionRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/session',
      {
        config: { permission: 'authenticated' },
        schema: {
          summary: 'Who is signed in, and the X-CSRF-Token a change made with the session cookie must carry',
          tags: ['access'],
          response: withErrors({ 200: SessionJson }),
        },
      },
      async (request) => {
        const principal = principalOf(request);
        const secret = principal.kind === 'session' ? sessionSecretOf(request) : undefined;
        return { principal: whoamiJson(principal), csrf_token: secret ? csrfTokenOf(secret) : null };
      },
    );

    app.delete(
      '/session',
      {
        config: { permission: 'authenticated' },
        schema: {
          summary: 'Sign out of the dashboard: ends the session on the server and clears its cookie',
          tags: ['access'],
          response: withErrors({ 200: Type.Object({ signed_out: Type.Literal(true) }) }),
        },
      },
      async (request, reply) => {
        const principal = principalOf(request);
        if (principal.kind !== 'session') {
          throw new FleetError(
            'VALIDATION',
            'sign-out ends a dashboard session; an API token is revoked with DELETE /api/v1/tokens/ID',
          );
        }
        await c.store.sessions.end(principal.id);
        clearSessionCookie(request, reply);
        return { signed_out: true as const };
      },
    );
  };
