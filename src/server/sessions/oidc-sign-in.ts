/**
 * Dashboard sign-in with OpenID Connect: authorization code with PKCE (S256), state and nonce, through
 * openid-client (which checks the ID token's signature, issuer, audience, expiry and nonce, failing closed).
 * The PKCE verifier, state and nonce travel in a short-lived HttpOnly cookie of the browser that started the
 * sign-in, so any replica can finish it. The provider is discovered at the first sign-in, not at start-up, so
 * a provider down at start does not stop the server. The client secret is read from a file or the
 * environment by the caller: never on a command line, in a URL or in a log line.
 */
import * as client from 'openid-client';
import { FleetError } from '../../core/errors.js';
import { mapOidcClaims, type OidcRoleMapping, type OidcRoleRule } from '../../core/oidc-role-mapping.js';

export interface OidcOptions {
  issuer: string;
  clientId: string;
  clientSecret?: string | undefined;
  mapping: OidcRoleMapping;
}

/** What the login step keeps in the browser's cookie for the callback. */
export interface OidcPending {
  state: string;
  nonce: string;
  verifier: string;
}

/** The issuer over plain HTTP only on loopback (a provider on the same machine, as in tests). */
function insecureAllowed(issuer: URL): boolean {
  return issuer.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(issuer.hostname);
}

export class OidcSignIn {
  private config: Promise<client.Configuration> | undefined;

  constructor(readonly options: OidcOptions) {}

  private configuration(): Promise<client.Configuration> {
    if (!this.config) {
      const issuer = new URL(this.options.issuer);
      const auth = this.options.clientSecret
        ? client.ClientSecretBasic(this.options.clientSecret)
        : client.None();
      this.config = client
        .discovery(issuer, this.options.clientId, undefined, auth, {
          ...(insecureAllowed(issuer) ? { execute: [client.allowInsecureRequests] } : {}),
        })
        .catch((error: unknown) => {
          // Discovered again at the next sign-in: the provider may be back.
          this.config = undefined;
          throw new FleetError(
            'INTERNAL',
            `the OpenID provider ${issuer.origin} could not be reached`,
            {},
            {
              cause: error,
            },
          );
        });
    }
    return this.config;
  }

  /** Where to send the browser, and what to keep for the callback. */
  async start(redirectUri: string): Promise<{ url: URL; pending: OidcPending }> {
    const config = await this.configuration();
    const pending = {
      state: client.randomState(),
      nonce: client.randomNonce(),
      verifier: client.randomPKCECodeVerifier(),
    };
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid profile email',
      code_challenge: await client.calculatePKCECodeChallenge(pending.verifier),
      code_challenge_method: 'S256',
      state: pending.state,
      nonce: pending.nonce,
    });
    return { url, pending };
  }

  /** Finishes a sign-in from the provider's redirect: the user's name, groups and the rule they select. */
  async finish(
    callbackUrl: URL,
    pending: OidcPending,
  ): Promise<{ name: string; groups: string[]; rule: OidcRoleRule | null }> {
    const config = await this.configuration();
    let claims: Record<string, unknown>;
    try {
      const tokens = await client.authorizationCodeGrant(config, callbackUrl, {
        pkceCodeVerifier: pending.verifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      });
      const idClaims: Record<string, unknown> = tokens.claims() ?? {};
      // Groups are often in the userinfo answer only; the ID token's subject must be the same user.
      const info = await client.fetchUserInfo(config, tokens.access_token, String(idClaims.sub));
      claims = { ...info, ...idClaims };
    } catch (error) {
      throw new FleetError(
        'UNAUTHENTICATED',
        `the OpenID provider's answer was refused: ${(error as Error).message}`,
        {},
        {
          cause: error,
        },
      );
    }
    return mapOidcClaims(this.options.mapping, claims);
  }
}
