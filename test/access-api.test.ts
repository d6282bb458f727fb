/**
 * Operator access through the HTTP app, on every backend: four principals — the first-start admin token, an
 * operator token scoped to `tag.region=west`, a release-manager token (CI) and a viewer — each can do exactly
 * what its role and scope allow; the rest is 403 FORBIDDEN naming the missing permission, or, for a device
 * outside a scope, the unknown device it is to that principal. No credential, a wrong, revoked or expired one
 * is 401.
 */
import { afterEach, beforeEach, expect, it } from 'vitest';
import { BUILT_IN_ROLES } from '../src/core/permissions.js';
import type { SqlStore } from '../src/store/sql-store.js';
import { type TestApp, testApp } from './support/app.js';
import { forEachBackend } from './support/stores.js';

const START = Date.parse('2026-11-22T12:00:00Z');
const DAY = 86_400_000;

const DEVICES = [
  { id: 'w1', hardware_type: 'hw-a', tags: { region: 'west' } },
  { id: 'w2', hardware_type: 'hw-a', tags: { region: 'west' } },
  { id: 'e1', hardware_type: 'hw-a', tags: { region: 'east' } },
  { id: 'e2', hardware_type: 'hw-a', tags: { region: 'east' } },
  { id: 'e3', hardware_type: 'hw-a', tags: { region: 'east' } },
].map((d) => ({ ...d, last_seen: new Date(START - 60_000).toISOString() }));

type Who = 'admin' | 'operator' | 'release' | 'viewer';

forEachBackend((backend) => {
  let t: TestApp;
  const tokens = {} as Record<Who, string>;

  async function call(who: Who | string | null, method: string, url: string, payload?: unknown) {
    const token = who === null ? undefined : who in tokens ? tokens[who as Who] : who;
    const r = await t.app.inject({
      method: method as 'GET',
      url,
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
      ...(payload === undefined ? {} : { payload: payload as object }),
    });
    // biome-ignore lint/suspicious/noExplicitAny: each test reads the fields of the reply it expects.
    return { status: r.statusCode, body: r.body ? (r.json() as Record<string, any>) : {} };
  }

  async function release(who: Who, version: string) {
    const r = await t.app.inject({
      method: 'POST',
      url: `/api/v1/artifacts?name=fw&version=${version}&type=firmware&hardware=hw-a`,
      headers: { authorization: `Bearer ${tokens[who]}`, 'content-type': 'application/octet-stream' },
      payload: Buffer.from(`fw ${version}\n`.repeat(64)),
    });
    return r.statusCode;
  }

  beforeEach(async () => {
    const store: SqlStore = await backend.open();
    t = await testApp(START, { store });
    tokens.admin = t.adminToken;
    expect((await call('admin', 'POST', '/api/v1/devices/import', { devices: DEVICES })).status).toBe(200);
    expect(await release('admin', '1.0.0')).toBe(201);
    const make = async (name: string, role: string, scope?: string) => {
      const r = await call('admin', 'POST', '/api/v1/tokens', { name, role, ...(scope ? { scope } : {}) });
      expect(r.status).toBe(201);
      return r.body.token as string;
    };
    tokens.operator = await make('west-ops', 'operator', 'tag.region=west');
    tokens.release = await make('ci', 'release-manager');
    tokens.viewer = await make('support', 'viewer');
  });
  afterEach(async () => {
    await t.close();
  });

  it('answers 401 without a token or with an unknown one, and whoami names each principal', async () => {
    expect((await call(null, 'GET', '/api/v1/whoami')).status).toBe(401);
    expect((await call('fld_api_nope', 'GET', '/api/v1/whoami')).body.error.code).toBe('UNAUTHENTICATED');
    const me = await call('operator', 'GET', '/api/v1/whoami');
    expect(me.body).toMatchObject({ name: 'west-ops', role: 'operator', scope: 'tag.region=west' });
    expect(new Set(me.body.permissions)).toEqual(new Set(BUILT_IN_ROLES.operator));
    expect((await call('admin', 'GET', '/api/v1/whoami')).body).toMatchObject({
      name: 'admin',
      role: 'admin',
      scope: null,
    });
  });

  it('a scoped operator sees, counts and acts only on the devices of its scope', async () => {
    const list = await call('operator', 'GET', '/api/v1/devices');
    expect(list.body.devices.map((d: { id: string }) => d.id)).toEqual(['w1', 'w2']);
    expect(
      (await call('operator', 'GET', '/api/v1/devices?filter=hardware%3Dhw-a')).body.devices,
    ).toHaveLength(2);
    expect((await call('operator', 'GET', '/api/v1/devices/count')).body.count).toBe(2);
    expect((await call('viewer', 'GET', '/api/v1/devices/count')).body.count).toBe(5);
    expect((await call('operator', 'GET', '/api/v1/fleet/stats')).body.total).toBe(2);
    expect((await call('operator', 'GET', '/api/v1/devices/w1')).status).toBe(200);
    const hidden = await call('operator', 'GET', '/api/v1/devices/e1');
    expect([hidden.status, hidden.body.error.code]).toEqual([404, 'DEVICE_NOT_FOUND']);
    expect((await call('operator', 'POST', '/api/v1/devices/e1/decommission')).status).toBe(404);
    expect((await call('operator', 'POST', '/api/v1/devices/e1/credential')).status).toBe(404);
    expect((await call('operator', 'POST', '/api/v1/devices/w1/credential')).status).toBe(201);
    expect((await call('operator', 'POST', '/api/v1/devices/w2/decommission')).status).toBe(200);
    expect((await call('admin', 'GET', '/api/v1/devices/e1')).body.status).not.toBe('decommissioned');

    // Events: only those about its devices.
    const events = await call('operator', 'GET', '/api/v1/events?limit=1000');
    expect(events.body.events.length).toBeGreaterThan(0);
    for (const e of events.body.events) expect(['w1', 'w2']).toContain(e.device_id);
    const recent = await call('operator', 'GET', '/api/v1/events/recent?limit=1000');
    for (const e of recent.body.events) expect(['w1', 'w2']).toContain(e.device_id);
    const all = await call('viewer', 'GET', '/api/v1/events?limit=1000');
    expect(all.body.events.some((e: { device_id: string | null }) => e.device_id === 'e1')).toBe(true);

    // Things that reach the whole fleet are refused to a scope.
    expect(
      (await call('operator', 'POST', '/api/v1/devices/import', { devices: [{ id: 'x1' }] })).status,
    ).toBe(403);
    expect((await call('operator', 'GET', '/api/v1/fleet/history')).status).toBe(403);
  });

  it('a rollout reaching outside the scope is refused with the count outside; inside it, it is made narrowed', async () => {
    const spec = { name: 'r', release: 'fw@1.0.0', strategy: 'immediate' };
    const wide = await call('operator', 'POST', '/api/v1/rollouts', { ...spec, filter: '' });
    expect(wide.status).toBe(403);
    expect(wide.body.error.code).toBe('FORBIDDEN');
    expect(wide.body.error.message).toContain('3 device(s) outside your scope');
    const some = await call('operator', 'POST', '/api/v1/rollouts', { ...spec, filter: 'id in (w1, e1)' });
    expect(some.body.error.message).toContain('1 device(s) outside');
    const ok = await call('operator', 'POST', '/api/v1/rollouts', { ...spec, filter: 'id=w1' });
    expect(ok.status).toBe(201);
    expect(ok.body.filter).toBe('(tag.region=west) and (id=w1)');
    expect((await call('operator', 'POST', `/api/v1/rollouts/${ok.body.id}/pause`)).status).toBe(200);
    const approve = await call('operator', 'POST', `/api/v1/rollouts/${ok.body.id}/approve`);
    expect(approve.status).toBe(403);
    expect(approve.body.error.message).toContain('needs the permission releases.approve');
    const east = await call('admin', 'POST', '/api/v1/updates/assign', {
      release: 'fw@1.0.0',
      devices: ['e1'],
    });
    expect(east.body.assigned).toHaveLength(1);
    const eastId = east.body.assigned[0].id as string;
    const seen = await call('operator', 'GET', '/api/v1/updates?limit=100');
    expect(seen.body.updates.map((u: { device_id: string }) => u.device_id)).toEqual(['w1']);
    expect((await call('operator', 'GET', `/api/v1/updates/${eastId}`)).status).toBe(404);
    expect((await call('operator', 'POST', `/api/v1/updates/${eastId}/cancel`)).status).toBe(404);
    expect((await call('viewer', 'GET', `/api/v1/updates/${eastId}`)).status).toBe(200);
    const assign = await call('operator', 'POST', '/api/v1/updates/assign', {
      release: 'fw@1.0.0',
      devices: ['w1', 'e2'],
    });
    expect([assign.status, assign.body.error.message]).toEqual([
      403,
      expect.stringContaining('1 device(s) are outside'),
    ]);
  });

  it('each role can do exactly what it allows, and the rest is 403 naming the missing permission', async () => {
    // The release manager uploads and approves, but neither starts rollouts nor touches devices.
    expect(await release('release', '2.0.0')).toBe(201);
    const started = await call('admin', 'POST', '/api/v1/rollouts', {
      name: 'a',
      release: 'fw@2.0.0',
      filter: '',
      strategy: 'immediate',
    });
    expect(started.status).toBe(201);
    const approve = await call('release', 'POST', `/api/v1/rollouts/${started.body.id}/approve`);
    expect(approve.status).not.toBe(403); // allowed; the rollout itself may not be waiting (409)
    const denied = await call('release', 'POST', '/api/v1/rollouts', {
      name: 'b',
      release: 'fw@2.0.0',
      filter: '',
      strategy: 'immediate',
    });
    expect(denied.status).toBe(403);
    expect(denied.body.error.message).toBe(
      'POST /api/v1/rollouts needs the permission rollouts.create, which role release-manager (token ci) does not have',
    );
    expect((await call('release', 'POST', `/api/v1/rollouts/${started.body.id}/pause`)).status).toBe(403);
    expect((await call('release', 'POST', '/api/v1/devices/e1/decommission')).status).toBe(403);

    // The viewer reads everything and changes nothing.
    for (const url of [
      '/api/v1/devices',
      '/api/v1/rollouts',
      '/api/v1/artifacts',
      '/api/v1/events',
      '/api/v1/webhooks',
      '/api/v1/fleet/history',
    ]) {
      expect([url, (await call('viewer', 'GET', url)).status]).toEqual([url, 200]);
    }
    expect(await release('viewer', '3.0.0')).toBe(403);
    for (const [method, url] of [
      ['POST', `/api/v1/rollouts/${started.body.id}/pause`],
      ['POST', '/api/v1/devices/e1/decommission'],
      ['POST', '/api/v1/webhooks'],
      ['GET', '/api/v1/tokens'],
      ['GET', '/api/v1/users'],
      ['POST', '/api/v1/enrollment-tokens'],
    ] as const) {
      const r = await call('viewer', method, url, method === 'POST' ? {} : undefined);
      expect([url, r.status, r.body.error.code]).toEqual([url, 403, 'FORBIDDEN']);
    }

    // Only the admin manages principals; the operator may not mint tokens.
    expect((await call('operator', 'POST', '/api/v1/tokens', { name: 'x', role: 'viewer' })).status).toBe(
      403,
    );
    expect((await call('admin', 'GET', '/api/v1/tokens')).body.tokens).toHaveLength(4);
  });

  it('tokens: shown once, listed without secrets, revocable, expiring, with their last use', async () => {
    const made = await call('admin', 'POST', '/api/v1/tokens', {
      name: 'short',
      role: 'viewer',
      expires_in: '1d',
    });
    expect(made.body).toMatchObject({ name: 'short', expires_at: new Date(START + DAY).toISOString() });
    expect((await call(made.body.token, 'GET', '/api/v1/whoami')).status).toBe(200);
    const listed = await call('admin', 'GET', '/api/v1/tokens');
    expect(JSON.stringify(listed.body)).not.toContain(made.body.token);
    const short = listed.body.tokens.find((x: { name: string }) => x.name === 'short');
    expect(short.last_used_at).toBe(new Date(START).toISOString());

    t.clock.advance(DAY);
    const expired = await call(made.body.token, 'GET', '/api/v1/whoami');
    expect([expired.status, expired.body.error.message]).toEqual([401, expect.stringContaining('expired')]);

    const revoked = await call(
      'admin',
      'DELETE',
      `/api/v1/tokens/${(await call('viewer', 'GET', '/api/v1/whoami')).body.id}`,
    );
    expect(revoked.body.revoked_at).not.toBeNull();
    expect((await call('viewer', 'GET', '/api/v1/devices')).status).toBe(401);

    expect((await call('admin', 'POST', '/api/v1/tokens', { name: 'x', role: 'nope' })).status).toBe(400);
    expect(
      (await call('admin', 'POST', '/api/v1/tokens', { name: 'x', role: 'viewer', scope: 'tag.=' })).body
        .error.code,
    ).toBe('FILTER_SYNTAX');
    expect(
      (await call('admin', 'POST', '/api/v1/tokens', { name: 'x', role: 'viewer', expires_in: 'soon' }))
        .status,
    ).toBe(400);
  });

  it('custom roles grant their permissions, and nobody grants more than they hold', async () => {
    const role = await call('admin', 'POST', '/api/v1/roles', {
      name: 'canary-ci',
      permissions: ['releases.write', 'rollouts.create', 'releases.read'],
    });
    expect(role.status).toBe(201);
    expect(
      (await call('admin', 'POST', '/api/v1/roles', { name: 'bad', permissions: ['devices.explode'] }))
        .status,
    ).toBe(400);
    expect(
      (await call('admin', 'POST', '/api/v1/roles', { name: 'viewer', permissions: ['devices.read'] }))
        .status,
    ).toBe(409);
    const ci = await call('admin', 'POST', '/api/v1/tokens', { name: 'canary', role: 'canary-ci' });
    tokens.release = ci.body.token; // reuse the helper's upload as this token
    expect(await release('release', '4.0.0')).toBe(201);
    const r = await call(ci.body.token, 'POST', '/api/v1/rollouts', {
      name: 'c',
      release: 'fw@4.0.0',
      filter: '',
      strategy: 'immediate',
    });
    expect(r.status).toBe(201);
    expect((await call(ci.body.token, 'POST', `/api/v1/rollouts/${r.body.id}/promote`)).status).toBe(403);
    expect((await call(ci.body.token, 'GET', '/api/v1/devices')).status).toBe(403);
    expect(
      (await call('admin', 'GET', '/api/v1/roles')).body.roles.map((x: { name: string }) => x.name),
    ).toContain('canary-ci');
    expect((await call('admin', 'DELETE', '/api/v1/roles/canary-ci')).status).toBe(409);

    // A user-admin custom role cannot hand out admin.
    await call('admin', 'POST', '/api/v1/roles', {
      name: 'token-clerk',
      permissions: ['admin.tokens', 'devices.read'],
    });
    const clerk = (await call('admin', 'POST', '/api/v1/tokens', { name: 'clerk', role: 'token-clerk' })).body
      .token;
    const escalate = await call(clerk, 'POST', '/api/v1/tokens', { name: 'root', role: 'admin' });
    expect([escalate.status, escalate.body.error.message]).toEqual([
      403,
      expect.stringContaining('you may only grant what you hold'),
    ]);
  });

  it('users: added with an argon2id hash never shown, listed, disabled', async () => {
    const added = await call('admin', 'POST', '/api/v1/users', {
      name: 'ana',
      password: 'correct horse battery',
      role: 'operator',
      scope: 'tag.region=west',
    });
    expect(added.status).toBe(201);
    expect(added.body).toMatchObject({
      name: 'ana',
      role: 'operator',
      scope: 'tag.region=west',
      disabled_at: null,
    });
    expect(
      (await call('admin', 'POST', '/api/v1/users', { name: 'bob', password: 'short', role: 'viewer' }))
        .status,
    ).toBe(400);
    expect(
      (
        await call('admin', 'POST', '/api/v1/users', {
          name: 'ana',
          password: 'another long one',
          role: 'viewer',
        })
      ).status,
    ).toBe(409);
    const stored = await t.store.principals.findUser('ana');
    expect(stored?.passwordHash).toMatch(/^\$argon2id\$/);
    const listed = await call('admin', 'GET', '/api/v1/users');
    expect(JSON.stringify(listed.body)).not.toContain('argon2');
    expect((await call('admin', 'POST', '/api/v1/users/ana/disable')).body.disabled_at).not.toBeNull();
    expect((await call('admin', 'POST', '/api/v1/users/ana/disable')).status).toBe(409);
    expect((await call('operator', 'GET', '/api/v1/users')).status).toBe(403);
  });

  it('the OpenAPI document shows every operator route with its permission', async () => {
    const doc = (await t.app.inject({ method: 'GET', url: '/docs/json' })).json() as {
      paths: Record<string, Record<string, { 'x-permission'?: string }>>;
    };
    const operatorRoutes = Object.entries(doc.paths).filter(
      ([path]) =>
        path.startsWith('/api/v1/') &&
        !path.startsWith('/api/v1/pki/ca') &&
        !path.startsWith('/api/v1/pki/crl'),
    );
    expect(operatorRoutes.length).toBeGreaterThan(40);
    for (const [path, methods] of operatorRoutes) {
      for (const [method, op] of Object.entries(methods)) {
        expect([method, path, typeof op['x-permission']]).toEqual([method, path, 'string']);
      }
    }
    expect(doc.paths['/api/v1/rollouts/{id}/{command}']?.post?.['x-permission']).toContain(
      'releases.approve (command approve, promote)',
    );
  });
});
