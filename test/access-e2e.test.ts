/**
 * Four principals end to end, against a real `fleetd server` process: the admin, an operator scoped to
 * `tag.region=west`, a CI token with `release-manager` and a viewer. Through the real CLI each does what its
 * role and scope allow, and the rest is a 403 naming the missing permission; in the dashboard (the system's
 * Chromium) the users sign in with name and password and the tokens with the token form, each sees only its
 * devices and the actions its role may take, a change the role lacks is refused with the same message, and
 * sign-out ends the session on the server.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, screenshot } from './support/browser.js';
import { type Operator, operator } from './support/fleet.js';
import { FLEETD, type ServerProcess, spawnServer, tempDir } from './support/processes.js';

const PASSWORD = 'correct horse battery staple';
const DEVICES = ['west-1', 'west-2', 'east-1', 'east-2'].map((id) => ({
  id,
  hardware_type: 'hw-a',
  tags: { region: id.split('-')[0]! },
}));

let server: ServerProcess;
let data: string;
let admin: Operator;
let browser: BrowserContext;
const tokens: Record<string, string> = {};

function cli(args: string[], token: string, stdin = '') {
  const r = spawnSync(process.execPath, [FLEETD, '--server', server.url, '--token', token, ...args], {
    encoding: 'utf8',
    input: stdin,
    env: { ...process.env, FLEETD_SERVER: '', FLEETD_TOKEN: '' },
    timeout: 30_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const forbidden = (method: string, route: string, permission: string, role: string, who: string) =>
  `${method} ${route} needs the permission ${permission}, which role ${role} (${who}) does not have`;

beforeAll(async () => {
  data = tempDir();
  server = await spawnServer(data, ['--log-level', 'warn']);
  admin = operator(server.url, data);
  tokens.admin = admin.token;
  expect((await admin.call('POST', '/api/v1/devices/import', { devices: DEVICES })).status).toBe(200);
  const made = (name: string, role: string, scope?: string) => {
    const r = cli(
      ['tokens', 'create', name, '--role', role, ...(scope ? ['--scope', scope] : [])],
      admin.token,
    );
    expect(r.code, r.stderr).toBe(0);
    return /secret \(shown once\): (\S+)/.exec(r.stdout)![1]!;
  };
  tokens.operator = made('west-ops', 'operator', 'tag.region=west');
  tokens.ci = made('ci', 'release-manager');
  tokens.viewer = made('support', 'viewer');
  for (const [name, role, scope] of [
    ['ana', 'operator', 'tag.region=west'],
    ['vic', 'viewer', undefined],
  ] as const) {
    const r = cli(
      ['users', 'add', name, '--role', role, ...(scope ? ['--scope', scope] : [])],
      admin.token,
      PASSWORD,
    );
    expect(r.code, r.stderr).toBe(0);
  }
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await server?.kill();
});

describe('four principals through the CLI', () => {
  // Seven CLI processes: about 1 s each on an idle machine, more on a loaded one.
  it('each does what its role and scope allow; the rest is a 403 naming the permission', {
    timeout: 60_000,
  }, () => {
    const firmware = join(data, 'fw.bin');
    writeFileSync(firmware, 'firmware 1.1.0\n'.repeat(100));
    const devicesFile = join(data, 'devices.json');
    writeFileSync(devicesFile, JSON.stringify({ devices: [{ id: 'west-3', tags: { region: 'west' } }] }));
    const ids = (token: string) =>
      (
        JSON.parse(cli(['devices', 'ls', '-o', 'json'], token).stdout) as { devices: { id: string }[] }
      ).devices
        .map((d) => d.id)
        .sort();

    expect(ids(tokens.admin!)).toEqual(['east-1', 'east-2', 'west-1', 'west-2']);

    expect(ids(tokens.operator!)).toEqual(['west-1', 'west-2']);
    expect(cli(['tokens', 'ls'], tokens.operator!)).toMatchObject({
      code: 1,
      stderr: `fleetd: ${forbidden('GET', '/api/v1/tokens', 'admin.tokens', 'operator', 'token west-ops')} (FORBIDDEN)\n`,
    });

    const upload = [
      'artifact',
      'upload',
      firmware,
      '--name',
      'fw',
      '--version',
      '1.1.0',
      '--hardware',
      'hw-a',
    ];
    const uploaded = cli(upload, tokens.ci!);
    expect(uploaded.code, uploaded.stderr).toBe(0);
    expect(cli(['devices', 'import', devicesFile], tokens.ci!)).toMatchObject({
      code: 1,
      stderr: `fleetd: ${forbidden('POST', '/api/v1/devices/import', 'devices.write', 'release-manager', 'token ci')} (FORBIDDEN); nothing was imported\n`,
    });

    expect(ids(tokens.viewer!)).toEqual(['east-1', 'east-2', 'west-1', 'west-2']);
    expect(cli([...upload.slice(0, -3), '1.2.0', '--hardware', 'hw-a'], tokens.viewer!)).toMatchObject({
      code: 1,
      stderr: `fleetd: ${forbidden('POST', '/api/v1/artifacts', 'releases.write', 'viewer', 'token support')} (FORBIDDEN)\n`,
    });
  });
});

describe('four principals in the dashboard', () => {
  let page: Page;

  async function signInWithPassword(name: string, password: string) {
    await page.goto(`${server.url}/#/devices`);
    await page.getByLabel('User name').fill(name);
    await page.getByLabel('Password').fill(password);
    await page.keyboard.press('Enter');
  }

  async function signInWithToken(token: string) {
    await page.goto(`${server.url}/#/devices`);
    await page.getByText('Sign in with an API token instead').click();
    await page.getByLabel('API token', { exact: true }).fill(token);
    await page.getByRole('button', { name: 'Sign in with token' }).click();
  }

  /** What the signed-in principal sees: its devices, and which change controls are shown. */
  async function seen() {
    await page.goto(`${server.url}/#/devices`);
    await page.getByText('west-1', { exact: true }).first().waitFor();
    const devices = (await page.getByRole('link', { name: /^(west|east)-\d$/ }).allTextContents()).sort();
    const importShown = await page.getByText('Import devices').isVisible();
    await page.goto(`${server.url}/#/rollouts`);
    await page.getByRole('heading', { name: 'Rollouts' }).waitFor();
    const newRolloutShown = await page.getByRole('link', { name: 'New rollout' }).isVisible();
    await page.goto(`${server.url}/#/artifacts`);
    await page
      .getByRole('heading', { name: /Artifacts|Releases/ })
      .first()
      .waitFor();
    const uploadShown = await page.getByText('Upload a release').isVisible();
    return { devices, importShown, newRolloutShown, uploadShown };
  }

  /**
   * A change (a new device credential) made from the page's own script as the dashboard would (with the
   * session's CSRF token, or the token signed in with): the server's answer.
   */
  const tryNewCredential = (token: string | null = null) =>
    page.evaluate(async (token) => {
      const session = (await (await fetch('/api/v1/session')).json()) as { csrf_token: string | null };
      const r = await fetch('/api/v1/devices/west-1/credential', {
        method: 'POST',
        headers: token ? { authorization: `Bearer ${token}` } : { 'x-csrf-token': session.csrf_token ?? '' },
      });
      return {
        status: r.status,
        message: ((await r.json()) as { error?: { message: string } }).error?.message,
      };
    }, token);

  async function signOut() {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('User name').waitFor();
  }

  beforeAll(async () => {
    page = await browser.newPage();
  });

  it('a wrong password is refused on the sign-in page', async () => {
    await signInWithPassword('ana', 'not the password at all');
    await page.getByText('unknown user name or wrong password').waitFor();
    await screenshot(page, 'access-sign-in-refused');
  });

  it('the scoped operator signs in with a password and sees its devices and its actions only', async () => {
    await signInWithPassword('ana', PASSWORD);
    await page.getByTestId('signed-in-as').getByText('ana (operator)').waitFor();
    expect(await seen()).toEqual({
      devices: ['west-1', 'west-2'],
      importShown: true,
      newRolloutShown: true,
      uploadShown: false,
    });
    await screenshot(page, 'access-operator');
    expect(await tryNewCredential()).toEqual({ status: 201, message: undefined });
    const cookie = (await browser.cookies(server.url)).find((c) => c.name === 'fleetd_session');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    await signOut();
    // The cookie's session is gone on the server, not just in the page.
    const r = await fetch(`${server.url}/api/v1/whoami`, {
      headers: { cookie: `fleetd_session=${cookie!.value}` },
    });
    expect(r.status).toBe(401);
  });

  it('the viewer sees every device and no change controls; a change is a 403 naming the permission', async () => {
    await signInWithPassword('vic', PASSWORD);
    await page.getByTestId('signed-in-as').getByText('vic (viewer)').waitFor();
    expect(await seen()).toEqual({
      devices: ['east-1', 'east-2', 'west-1', 'west-2'],
      importShown: false,
      newRolloutShown: false,
      uploadShown: false,
    });
    expect(await tryNewCredential()).toEqual({
      status: 403,
      message: forbidden('POST', '/api/v1/devices/:id/credential', 'devices.write', 'viewer', 'user vic'),
    });
    await signOut();
  });

  it('the CI token (release-manager) may upload but not import or start rollouts; the admin may do all', async () => {
    await signInWithToken(tokens.ci!);
    await page.getByTestId('signed-in-as').getByText('ci (release-manager)').waitFor();
    expect(await seen()).toMatchObject({ importShown: false, newRolloutShown: false, uploadShown: true });
    expect(await tryNewCredential(tokens.ci!)).toEqual({
      status: 403,
      message: forbidden(
        'POST',
        '/api/v1/devices/:id/credential',
        'devices.write',
        'release-manager',
        'token ci',
      ),
    });
    await signOut();

    await signInWithToken(tokens.admin!);
    await page.getByTestId('signed-in-as').getByText('admin (admin)').waitFor();
    expect(await seen()).toMatchObject({ importShown: true, newRolloutShown: true, uploadShown: true });
    await screenshot(page, 'access-admin');
  });
});
