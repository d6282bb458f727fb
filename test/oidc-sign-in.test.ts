/**
 * Dashboard sign-in with OpenID Connect against a real OpenID Provider (oidc-provider, started here on a
 * loopback port) driven through its real redirects and login and consent forms: authorization code with
 * PKCE, the user's groups mapped to a role and scope by the role file, a user in no mapped group refused,
 * and a callback not started by this browser refused. Every attempt is in the audit log.
 */

import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import Provider from 'oidc-provider';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { oidcSettings } from '../src/server/sessions/oidc-settings.js';
import { OidcSignIn } from '../src/server/sessions/oidc-sign-in.js';
import { type TestApp, testApp } from './support/app.js';
import { tempDir } from './support/processes.js';

const FLEETD = 'fleetd.test';
const CALLBACK = `http://${FLEETD}/api/v1/oidc/callback`;
const GROUPS: Record<string, string[]> = {
  ana: ['staff', 'west-ops'],
  root: ['fleet-admins'],
  eve: ['marketing'],
};

let provider: Server;
let issuer: string;
let t: TestApp;

beforeAll(async () => {
  provider = createServer();
  await new Promise<void>((resolve) => provider.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(provider.address() as AddressInfo).port}`;
  const op = new Provider(issuer, {
    clients: [
      {
        client_id: 'fleetd',
        client_secret: 'the test client secret, long enough',
        redirect_uris: [CALLBACK],
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
    ],
    findAccount: async (_ctx, id) => ({
      accountId: id,
      claims: async () => ({ sub: id, preferred_username: id, groups: GROUPS[id] ?? [] }),
    }),
    claims: { openid: ['sub'], profile: ['preferred_username', 'groups'], email: ['email'] },
    cookies: { keys: ['a cookie key of the test provider'] },
    features: { devInteractions: { enabled: true } },
  });
  provider.on('request', op.callback());

  const dir = tempDir();
  const roles = join(dir, 'oidc-roles.yaml');
  writeFileSync(
    roles,
    [
      'mappings:',
      '  - group: fleet-admins',
      '    role: admin',
      '  - group: west-ops',
      '    role: operator',
      "    scope: 'tag.region=west'",
      '',
    ].join('\n'),
  );
  const secretFile = join(dir, 'client-secret');
  writeFileSync(secretFile, 'the test client secret, long enough\n');
  const settings = oidcSettings({
    issuer,
    clientId: 'fleetd',
    clientSecretFile: secretFile,
    rolesFile: roles,
  });
  t = await testApp(undefined, { oidc: new OidcSignIn(settings!) });
});

afterAll(async () => {
  await t?.close();
  provider?.closeAllConnections();
  await new Promise((resolve) => provider?.close(resolve));
});

const cookieOf = (setCookie: string | string[] | undefined, name: string) =>
  [setCookie ?? []]
    .flat()
    .find((c) => c.startsWith(`${name}=`))
    ?.split(';', 1)[0];

/** Signs `user` in at the provider, following its redirects and forms as a browser would, up to FleetD's callback. */
async function atProvider(start: string, user: string): Promise<string> {
  const jar = new Map<string, string>();
  let url = start;
  for (let step = 0; step < 20; step++) {
    const form = /<form[^>]*action="([^"]+)"/.exec(url.startsWith('html:') ? url : '');
    let r: Response;
    if (form) {
      const fields = url.includes('name="login"')
        ? { prompt: 'login', login: user, password: 'any password' }
        : { prompt: 'consent' };
      r = await fetch(new URL(form[1]!, issuer), {
        method: 'POST',
        redirect: 'manual',
        headers: {
          cookie: [...jar.values()].join('; '),
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams(fields),
      });
    } else {
      r = await fetch(url, { redirect: 'manual', headers: { cookie: [...jar.values()].join('; ') } });
    }
    for (const c of r.headers.getSetCookie()) jar.set(c.split('=', 1)[0]!, c.split(';', 1)[0]!);
    const location = r.headers.get('location');
    if (location) {
      url = new URL(location, issuer).href;
      if (url.startsWith(CALLBACK)) return url;
    } else {
      expect(r.status, `the provider answered ${r.status}`).toBe(200);
      url = `html:${await r.text()}`;
    }
  }
  throw new Error('the provider never redirected back');
}

async function signIn(user: string) {
  const login = await t.app.inject({ method: 'GET', url: '/api/v1/oidc/login', headers: { host: FLEETD } });
  expect(login.statusCode).toBe(302);
  const authorize = new URL(login.headers.location as string);
  expect(authorize.origin).toBe(issuer);
  expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
  expect(authorize.searchParams.get('redirect_uri')).toBe(CALLBACK);
  const pending = cookieOf(login.headers['set-cookie'], 'fleetd_oidc')!;
  const back = new URL(await atProvider(authorize.href, user));
  return t.app.inject({
    method: 'GET',
    url: `${back.pathname}${back.search}`,
    headers: { host: FLEETD, cookie: pending },
  });
}

it('signs a user in through the provider with the role and scope their group maps to', async () => {
  const done = await signIn('ana');
  expect(done.statusCode).toBe(302);
  expect(done.headers.location).toBe('/');
  const session = cookieOf(done.headers['set-cookie'], 'fleetd_session')!;
  expect(String(done.headers['set-cookie'])).toContain('HttpOnly; SameSite=Strict');
  const me = await t.app.inject({ method: 'GET', url: '/api/v1/whoami', headers: { cookie: session } });
  expect(me.json()).toMatchObject({
    kind: 'session',
    name: 'ana',
    role: 'operator',
    scope: 'tag.region=west',
  });
  const [entry] = await t.store.audit.list({ actor: 'user:ana', limit: 10 });
  expect(entry).toMatchObject({
    action: 'sign-in',
    outcome: 200,
    role: 'operator',
    data: { method: 'oidc' },
  });
  // No token of the provider's and no secret in the audit log.
  expect(JSON.stringify(entry)).not.toMatch(/eyJ|the test client secret/);
});

it('refuses a user none of whose groups has a role, and a callback this browser did not start', async () => {
  const refused = await signIn('eve');
  expect(refused.statusCode).toBe(403);
  expect(refused.json().error.message).toBe(
    'eve signed in at the provider, but none of their groups (marketing) has a role here: an admin maps ' +
      'groups to roles in the OpenID Connect role file',
  );
  const [entry] = await t.store.audit.list({ actor: 'user:eve', limit: 10 });
  expect(entry).toMatchObject({
    action: 'sign-in',
    outcome: 403,
    data: { method: 'oidc', failure: 'no_role' },
  });

  const forged = await t.app.inject({
    method: 'GET',
    url: '/api/v1/oidc/callback?code=abc&state=def',
    headers: { host: FLEETD },
  });
  expect(forged.statusCode).toBe(401);
  expect(forged.json().error.message).toMatch(/^no sign-in was started from this browser/);
});
