/**
 * The sign-in policy as `fleetd server`'s flags set it: the policy the flags make, in the app in-process on the
 * injected clock (a name locked after the chosen number of failures and unlocked after the chosen time, a
 * session ended after the chosen idle time), and a bad flag refused by the built binary in one line.
 */
import { afterEach, beforeEach, expect, it } from 'vitest';
import { signInPoliciesFromFlags } from '../src/server/sessions/sign-in-flags.js';
import { type TestApp, testApp } from './support/app.js';
import { runCli, tempDir } from './support/processes.js';

const PASSWORD = 'correct horse battery staple';
const FLAGS = {
  sessionLifetime: '1h',
  sessionIdle: '2m',
  lockoutFailures: '2',
  lockoutWindow: '1m',
  lockoutTime: '5m',
};

let t: TestApp;

beforeEach(async () => {
  t = await testApp(undefined, { signIn: signInPoliciesFromFlags(FLAGS) });
  const r = await t.app.inject({
    method: 'POST',
    url: '/api/v1/users',
    headers: t.admin,
    payload: { name: 'ana', role: 'viewer', password: PASSWORD },
  });
  expect(r.statusCode).toBe(201);
});
afterEach(async () => {
  await t.close();
});

const signIn = async (password: string) => {
  const r = await t.app.inject({
    method: 'POST',
    url: '/api/v1/session',
    payload: { name: 'ana', password },
  });
  return { status: r.statusCode, cookie: String(r.headers['set-cookie']).split(';', 1)[0]! };
};

it('locks a name after --lockout-failures within --lockout-window, for --lockout-time', async () => {
  // Failures further apart than the window do not add up.
  expect((await signIn('wrong')).status).toBe(401);
  t.clock.advance(60_000);
  expect((await signIn('wrong')).status).toBe(401);
  expect((await signIn(PASSWORD)).status).toBe(200);

  expect((await signIn('wrong')).status).toBe(401);
  t.clock.advance(59_999);
  expect((await signIn('wrong')).status).toBe(401);
  // Locked: the right password is refused until the lock-out time has passed, and no sooner.
  expect((await signIn(PASSWORD)).status).toBe(429);
  t.clock.advance(5 * 60_000 - 1);
  expect((await signIn(PASSWORD)).status).toBe(429);
  t.clock.advance(1);
  expect((await signIn(PASSWORD)).status).toBe(200);
});

it('ends a session unused for --session-idle', async () => {
  const { cookie, status } = await signIn(PASSWORD);
  expect(status).toBe(200);
  const whoami = async () =>
    (await t.app.inject({ method: 'GET', url: '/api/v1/whoami', headers: { cookie } })).statusCode;
  t.clock.advance(2 * 60_000 - 1);
  expect(await whoami()).toBe(200);
  t.clock.advance(2 * 60_000);
  expect(await whoami()).toBe(401);
});

it('fleetd server refuses a bad sign-in flag in one line, with a non-zero exit', () => {
  // One spawn: the other bad values are the unit test's (src/server/sessions/sign-in-flags.test.ts).
  const r = runCli(['server', '--port', '0', '--no-mqtt', '--data', tempDir(), '--lockout-failures', 'many']);
  expect(r.code).not.toBe(0);
  expect(r.stderr.trim().split('\n')).toEqual([
    'fleetd: --lockout-failures: "many" must be a whole number from 1 to 1000',
  ]);
});
