/**
 * OpenID Connect sign-in (docs/access.md): GET /oidc/login sends the browser to the provider; the provider
 * sends it back to GET /oidc/callback, which maps the user's groups to a role and scope, starts a dashboard
 * session and goes to the dashboard. Public routes, outside the access hook; every callback, signed in or
 * refused, is an audit entry.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { FleetError, isFleetError } from '../../core/errors.js';
import type { AuthenticationGuard } from '../access.js';
import type { ServerContext } from '../context.js';
import type { OidcPending, OidcSignIn } from '../sessions/oidc-sign-in.js';
import { auditSignIn, type SignInPolicies, startSession } from '../sessions/password-sign-in.js';
import { setSessionCookie } from '../sessions/session-cookie.js';

const PENDING_COOKIE = 'fleetd_oidc';
const CALLBACK = '/api/v1/oidc/callback';
/** Long enough to sign in at the provider; the pending sign-in is useless after. */
const PENDING_MAX_AGE_S = 600;

// Lax, not Strict: the provider's redirect back is a navigation from another site, which must carry it.
const pendingCookie = (request: FastifyRequest) => ({
  path: '/api/v1/oidc',
  httpOnly: true,
  sameSite: 'lax' as const,
  secure: request.protocol === 'https',
});

const callbackUrlOf = (request: FastifyRequest) => `${request.protocol}://${request.host}${CALLBACK}`;

function pendingOf(request: FastifyRequest): OidcPending {
  const raw = request.cookies?.[PENDING_COOKIE];
  try {
    const p = JSON.parse(Buffer.from(raw ?? '', 'base64url').toString('utf8')) as Partial<OidcPending>;
    if (typeof p.state === 'string' && typeof p.nonce === 'string' && typeof p.verifier === 'string') {
      return { state: p.state, nonce: p.nonce, verifier: p.verifier };
    }
  } catch {
    // Refused below.
  }
  throw new FleetError(
    'UNAUTHENTICATED',
    'no sign-in was started from this browser, or it took more than 10 minutes: start again from the dashboard',
  );
}

export const oidcRoutes =
  (
    c: ServerContext,
    oidc: OidcSignIn,
    guard: AuthenticationGuard,
    policies: SignInPolicies,
  ): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/oidc/login',
      {
        schema: {
          summary: 'Sign in with OpenID Connect: redirects to the provider',
          tags: ['access'],
          security: [],
          // Public, before any sign-in: the OpenAPI document says so where operator routes name a permission.
          'x-permission': 'none (public)',
        },
      },
      async (request, reply) => {
        const { url, pending } = await oidc.start(callbackUrlOf(request));
        reply.setCookie(PENDING_COOKIE, Buffer.from(JSON.stringify(pending)).toString('base64url'), {
          ...pendingCookie(request),
          maxAge: PENDING_MAX_AGE_S,
        });
        return reply.redirect(url.href, 302);
      },
    );

    app.get(
      '/oidc/callback',
      {
        schema: {
          summary: "The OpenID provider's redirect back: starts a dashboard session",
          tags: ['access'],
          security: [],
          // Public, before any sign-in: the OpenAPI document says so where operator routes name a permission.
          'x-permission': 'none (public)',
          querystring: Type.Object({}, { additionalProperties: Type.String({ maxLength: 4096 }) }),
        },
      },
      async (request: FastifyRequest, reply: FastifyReply) => {
        guard.refuseIfLimited(request, reply);
        const pending = pendingOf(request);
        reply.clearCookie(PENDING_COOKIE, pendingCookie(request));
        const url = new URL(request.url, callbackUrlOf(request));
        let signedIn: Awaited<ReturnType<OidcSignIn['finish']>>;
        try {
          signedIn = await oidc.finish(url, pending);
        } catch (error) {
          await auditSignIn(c, request, 'unknown', 401, { failure: 'provider_refused', method: 'oidc' });
          if (isFleetError(error) && error.code === 'UNAUTHENTICATED')
            return guard.failed(request, reply, error);
          throw error;
        }
        const { name, groups, rule } = signedIn;
        if (!rule) {
          await auditSignIn(c, request, name, 403, { failure: 'no_role', method: 'oidc' });
          throw new FleetError(
            'FORBIDDEN',
            `${name} signed in at the provider, but none of their groups (${groups.join(', ') || 'none'}) has a ` +
              'role here: an admin maps groups to roles in the OpenID Connect role file',
          );
        }
        const { secret } = await startSession(c, request, policies, {
          userName: name,
          method: 'oidc',
          role: rule.role,
          scope: rule.scope,
        });
        setSessionCookie(request, reply, secret);
        return reply.redirect('/', 302);
      },
    );
  };
