/**
 * Dashboard sign-in with a user's name and password, on every backend: the session cookie's attributes, the
 * CSRF token a cookie-authenticated change needs, sign-out, the session's lifetime and idle end, a disabled
 * user, and the lock-out after repeated failures; every sign-in, failed or not, in the audit log.
 */
import { afterEach, beforeEach, expect, it } from 'vitest';
import { DEFAULT_LOCKOUT_POLICY, DEFAULT_SESSION_POLICY } from '../src/core/sign-in-policy.js';
import { type TestApp, testApp } from './support/app.js';
import { forEachBackend } from './support/stores.js';

const PASSWORD = 'correct horse battery staple';

forEachBackend((backend) => {
  let t: TestApp;

  async function call(method: string, url: string, headers: Record<string, string> = {}, payload?: unknown) {
    const r = await t.app.inject({
      method: method as 'GET',
      url,
      headers,
      ...(payload === undefined ? {} : { payload: payload as object }),
    });
    return {
      status: r.statusCode,
      headers: r.headers,
      // biome-ignore lint/suspicious/noExplicitAny: each test reads the fields of the reply it expects.
      body: r.body ? (r.json() as Record<string, any>) : {},
    };
  }

  const signIn = (name: string, password: string) => call('POST', '/api/v1/session', {}, { name, password });

  /** Signs in and returns the Cookie header and the CSRF token of the session. */
  async function session(name: string) {
    const r = await signIn(name, PASSWORD);
    expect(r.status).toBe(200);
    const setCookie = String(r.headers['set-cookie']);
    return { cookie: setCookie.split(';', 1)[0]!, csrf: r.body.csrf_token as string, setCookie };
  }

  const auditOf = async (name: string) =>
    (await t.store.audit.list({ actor: `user:${name}`, limit: 100 })).filter((e) => e.action === 'sign-in');

  beforeEach(async () => {
    t = await testApp(undefined, { store: await backend.open() });
    for (const [name, role] of [
      ['ana', 'operator'],
      ['vic', 'viewer'],
    ]) {
      const r = await call('POST', '/api/v1/users', t.admin, { name, role, password: PASSWORD });
      expect(r.status).toBe(201);
    }
  });
  afterEach(async () => {
    await t.close();
  });

  it('signs in to an HttpOnly, SameSite=Strict cookie; the session acts as the user with its role', async () => {
    const s = await session('ana');
    expect(s.setCookie).toMatch(/^fleetd_session=fld_session_[\w-]+; Path=\/; HttpOnly; SameSite=Strict$/);
    const me = await call('GET', '/api/v1/whoami', { cookie: s.cookie });
    expect(me.body).toMatchObject({ kind: 'session', name: 'ana', role: 'operator', scope: null });
    // The secret is in no answer body and no audit entry.
    const secret = s.cookie.split('=')[1]!;
    const entries = await auditOf('ana');
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ outcome: 200, role: 'operator', data: { method: 'password' } });
    expect(JSON.stringify(await t.store.audit.list({ limit: 1000 }))).not.toContain(secret);

    const imported = await call(
      'POST',
      '/api/v1/devices/import',
      { cookie: s.cookie, 'x-csrf-token': s.csrf },
      { devices: [{ id: 'd1' }] },
    );
    expect(imported.status).toBe(200);
    const change = (await t.store.audit.list({ actor: 'user:ana', limit: 10 })).find(
      (e) => e.action === 'POST /api/v1/devices/import',
    );
    expect(change).toMatchObject({ role: 'operator', outcome: 200 });
  });

  it('refuses a change made with the cookie but without its CSRF token, and a viewer what its role lacks', async () => {
    const s = await session('ana');
    for (const csrf of [undefined, 'x'.repeat(43)]) {
      const r = await call(
        'POST',
        '/api/v1/devices/import',
        { cookie: s.cookie, ...(csrf ? { 'x-csrf-token': csrf } : {}) },
        { devices: [{ id: 'd1' }] },
      );
      expect(r.status).toBe(403);
      expect(r.body.error.message).toContain('x-csrf-token');
    }
    expect((await call('GET', '/api/v1/devices/count', { cookie: s.cookie })).status).toBe(200);
    // Another session's token is not this one's.
    const other = await session('vic');
    const r = await call(
      'POST',
      '/api/v1/devices/import',
      { cookie: s.cookie, 'x-csrf-token': other.csrf },
      {},
    );
    expect(r.status).toBe(403);
    const refused = await call(
      'POST',
      '/api/v1/devices/import',
      { cookie: other.cookie, 'x-csrf-token': other.csrf },
      { devices: [{ id: 'd1' }] },
    );
    expect(refused.status).toBe(403);
    expect(refused.body.error.message).toBe(
      'POST /api/v1/devices/import needs the permission devices.write, which role viewer (user vic) does not have',
    );
  });

  it('signs out: the session ends on the server and the cookie is cleared', async () => {
    const s = await session('ana');
    expect((await call('DELETE', '/api/v1/session', { cookie: s.cookie })).status).toBe(403);
    const out = await call('DELETE', '/api/v1/session', { cookie: s.cookie, 'x-csrf-token': s.csrf });
    expect(out.status).toBe(200);
    expect(String(out.headers['set-cookie'])).toMatch(/^fleetd_session=; Max-Age=0;/);
    const after = await call('GET', '/api/v1/session', { cookie: s.cookie });
    expect(after.status).toBe(401);
    expect(after.body.error.message).toBe('the dashboard session is unknown or signed out');
  });

  it('ends a session unused for the idle time, one past its lifetime, and a disabled user’s', async () => {
    const idle = await session('ana');
    t.clock.advance(DEFAULT_SESSION_POLICY.idleMs - 1);
    expect((await call('GET', '/api/v1/session', { cookie: idle.cookie })).status).toBe(200);
    t.clock.advance(DEFAULT_SESSION_POLICY.idleMs - 1);
    // Used just before: still on.
    expect((await call('GET', '/api/v1/session', { cookie: idle.cookie })).status).toBe(200);
    t.clock.advance(DEFAULT_SESSION_POLICY.idleMs);
    const ended = await call('GET', '/api/v1/session', { cookie: idle.cookie });
    expect(ended.status).toBe(401);
    expect(ended.body.error.message).toContain('a time unused');

    const kept = await session('ana');
    for (let used = 0; used < DEFAULT_SESSION_POLICY.absoluteMs; used += DEFAULT_SESSION_POLICY.idleMs / 2) {
      expect((await call('GET', '/api/v1/session', { cookie: kept.cookie })).status).toBe(200);
      t.clock.advance(DEFAULT_SESSION_POLICY.idleMs / 2);
    }
    const expired = await call('GET', '/api/v1/session', { cookie: kept.cookie });
    expect(expired.body.error.message).toBe('the dashboard session has expired: sign in again');

    const s = await session('vic');
    expect((await call('POST', '/api/v1/users/vic/disable', t.admin)).status).toBe(200);
    const disabled = await call('GET', '/api/v1/whoami', { cookie: s.cookie });
    expect(disabled.status).toBe(401);
    expect((await signIn('vic', PASSWORD)).body.error.message).toBe('the user vic is disabled');
  });

  it('locks a name out after repeated failures, right password or not, until its unlock time', async () => {
    const { maxFailures, lockMs } = DEFAULT_LOCKOUT_POLICY;
    for (let i = 0; i < maxFailures; i++) {
      const r = await signIn('ana', 'not the password at all');
      expect(r.status).toBe(401);
      expect(r.body.error.message).toBe('unknown user name or wrong password');
    }
    const locked = await signIn('ana', PASSWORD);
    expect(locked.status).toBe(429);
    expect(locked.headers['retry-after']).toBe(String(lockMs / 1000));
    expect(locked.body.error.message).toMatch(/^too many failed sign-ins for ana: locked until 20/);
    // An unknown name is answered like a wrong password, and locks the same way.
    expect((await signIn('nobody', PASSWORD)).body.error.message).toBe('unknown user name or wrong password');

    t.clock.advance(lockMs);
    expect((await signIn('ana', PASSWORD)).status).toBe(200);
    const outcomes = (await auditOf('ana')).map((e) => [e.outcome, e.data.failure ?? 'ok']);
    expect(outcomes).toEqual([
      ...Array.from({ length: maxFailures }, () => [401, 'bad_credentials']),
      [429, 'locked'],
      [200, 'ok'],
    ]);
  });
});
