/**
 * Device groups over the operator API (in-process, SQLite): create, list, show, update and delete with the
 * member counts of the caller's scope, membership changes answered per device, the permissions of the built-in
 * roles, a rollout targeting `group: NAME`, and a group in use refused deletion (409) naming its users.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type TestApp, testApp } from './support/app.js';

const START = Date.parse('2026-11-22T12:00:00Z');
const DEVICES = [
  { id: 'w1', hardware_type: 'hw-a', tags: { region: 'west' } },
  { id: 'w2', hardware_type: 'hw-a', tags: { region: 'west' } },
  { id: 'e1', hardware_type: 'hw-a', tags: { region: 'east' } },
  { id: 'e2', hardware_type: 'hw-a', tags: { region: 'east' } },
].map((d) => ({ ...d, last_seen: new Date(START - 60_000).toISOString() }));

describe('groups API', () => {
  let t: TestApp;
  const tokens: Record<string, string> = {};

  async function call(who: string, method: string, url: string, payload?: unknown) {
    const r = await t.app.inject({
      method: method as 'GET',
      url,
      headers: { authorization: `Bearer ${tokens[who] ?? who}` },
      ...(payload === undefined ? {} : { payload: payload as object }),
    });
    // biome-ignore lint/suspicious/noExplicitAny: each test reads the fields of the reply it expects.
    return { status: r.statusCode, body: r.body ? (r.json() as Record<string, any>) : {} };
  }

  beforeEach(async () => {
    t = await testApp(START);
    tokens.admin = t.adminToken;
    expect((await call('admin', 'POST', '/api/v1/devices/import', { devices: DEVICES })).status).toBe(200);
    const make = async (name: string, role: string, scope?: string) => {
      const r = await call('admin', 'POST', '/api/v1/tokens', { name, role, ...(scope ? { scope } : {}) });
      expect(r.status).toBe(201);
      return r.body.token as string;
    };
    tokens.operator = await make('ops', 'operator');
    tokens.west = await make('west-ops', 'operator', 'tag.region=west');
    tokens.viewer = await make('support', 'viewer');
    tokens.ci = await make('ci', 'release-manager');
  });
  afterEach(async () => {
    await t.close();
  });

  it('creates, lists, shows, updates and deletes groups, with member counts', async () => {
    const pilots = await call('operator', 'POST', '/api/v1/groups', {
      name: 'pilots',
      description: 'first wave',
    });
    expect(pilots.status).toBe(201);
    expect(pilots.body).toMatchObject({ name: 'pilots', kind: 'static', filter: null, member_count: 0 });
    const added = await call('operator', 'POST', '/api/v1/groups/pilots/add', { ids: ['w1', 'e1', 'ghost'] });
    expect(added.status).toBe(200);
    expect(added.body).toEqual({
      results: [
        { id: 'w1', ok: true, changed: true },
        { id: 'e1', ok: true, changed: true },
        {
          id: 'ghost',
          ok: false,
          error: { code: 'DEVICE_NOT_FOUND', message: 'device ghost does not exist' },
        },
      ],
      changed: 2,
    });
    const east = await call('operator', 'POST', '/api/v1/groups', {
      name: 'east',
      filter: 'tag.region = east',
    });
    expect(east.body).toMatchObject({ kind: 'dynamic', member_count: 2 });

    const list = await call('viewer', 'GET', '/api/v1/groups');
    expect(
      list.body.groups.map((g: { name: string; member_count: number }) => [g.name, g.member_count]),
    ).toEqual([
      ['east', 2],
      ['pilots', 2],
    ]);
    const shown = await call('viewer', 'GET', '/api/v1/groups/pilots');
    expect(shown.body).toMatchObject({ group: { name: 'pilots', member_count: 2 }, members: ['e1', 'w1'] });
    const devices = await call(
      'viewer',
      'GET',
      `/api/v1/devices?filter=${encodeURIComponent('group = east and group != pilots')}`,
    );
    expect(devices.body.devices.map((d: { id: string }) => d.id)).toEqual(['e2']);

    const changed = await call('operator', 'PATCH', '/api/v1/groups/east', { filter: 'id = e2' });
    expect(changed.body).toMatchObject({ filter: 'id = e2', member_count: 1 });
    const removed = await call('operator', 'POST', '/api/v1/groups/pilots/remove', { ids: ['w1', 'w2'] });
    expect(removed.body.changed).toBe(1);
    expect((await call('operator', 'DELETE', '/api/v1/groups/pilots')).body).toEqual({ deleted: 'pilots' });
    expect((await call('viewer', 'GET', '/api/v1/groups/pilots')).status).toBe(404);
  });

  it('answers a bad filter, a taken name, a cycle and a dynamic group given members with a 4xx, writing nothing', async () => {
    const bad = await call('operator', 'POST', '/api/v1/groups', { name: 'x', filter: 'tag. = 1' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('FILTER_SYNTAX');
    const unknown = await call('operator', 'POST', '/api/v1/groups', { name: 'x', filter: 'group = nope' });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.message).toContain('group nope does not exist');
    expect((await call('operator', 'POST', '/api/v1/groups', { name: 'bad name' })).status).toBe(400);
    await call('operator', 'POST', '/api/v1/groups', { name: 'a', filter: 'tag.region = west' });
    await call('operator', 'POST', '/api/v1/groups', { name: 'b', filter: 'group = a' });
    expect((await call('operator', 'POST', '/api/v1/groups', { name: 'a' })).status).toBe(409);
    const cycle = await call('operator', 'PATCH', '/api/v1/groups/a', { filter: 'group = b' });
    expect(cycle.status).toBe(400);
    expect(cycle.body.error.message).toBe('group a names itself: a → b → a');
    const members = await call('operator', 'POST', '/api/v1/groups/a/add', { ids: ['w1'] });
    expect(members.status).toBe(400);
    expect((await call('viewer', 'GET', '/api/v1/groups/a')).body.group.filter).toBe('tag.region = west');
    expect((await call('operator', 'POST', '/api/v1/groups/nope/add', { ids: ['w1'] })).status).toBe(404);
    // An enrollment claim is matched in memory against one device, where groups are not resolved.
    const claim = await call('admin', 'POST', '/api/v1/enrollment-tokens', { claim: 'group = a' });
    expect(claim.status).toBe(400);
    expect(claim.body.error.message).toContain('group terms cannot be used in a claim');
  });

  it('gives groups.read to every built-in role and groups.write to operators and admins', async () => {
    for (const who of ['viewer', 'ci', 'operator']) {
      expect((await call(who, 'GET', '/api/v1/groups')).status).toBe(200);
    }
    for (const who of ['viewer', 'ci']) {
      const r = await call(who, 'POST', '/api/v1/groups', { name: 'g' });
      expect(r.status).toBe(403);
      expect(r.body.error.message).toContain('groups.write');
    }
    expect((await call('admin', 'POST', '/api/v1/groups', { name: 'g' })).status).toBe(201);
  });

  it("applies the caller's scope to counts, members and membership changes", async () => {
    await call('operator', 'POST', '/api/v1/groups', { name: 'pilots' });
    await call('operator', 'POST', '/api/v1/groups/pilots/add', { ids: ['w1', 'e1'] });
    expect((await call('west', 'GET', '/api/v1/groups/pilots')).body).toMatchObject({
      group: { member_count: 1 },
      members: ['w1'],
    });
    const added = await call('west', 'POST', '/api/v1/groups/pilots/add', { ids: ['w2', 'e2'] });
    expect(added.body.results).toEqual([
      { id: 'w2', ok: true, changed: true },
      { id: 'e2', ok: false, error: { code: 'DEVICE_NOT_FOUND', message: 'device e2 does not exist' } },
    ]);
    expect((await call('operator', 'GET', '/api/v1/groups/pilots')).body.members).toEqual(['e1', 'w1', 'w2']);
    const deleted = await call('west', 'DELETE', '/api/v1/groups/pilots');
    expect(deleted.status).toBe(403);
  });

  it('targets a rollout at group: NAME, and refuses to delete a group an open rollout or a scope names', async () => {
    const upload = await t.app.inject({
      method: 'POST',
      url: '/api/v1/artifacts?name=fw&version=1.0.0&type=firmware&hardware=hw-a',
      headers: { authorization: `Bearer ${tokens.admin}`, 'content-type': 'application/octet-stream' },
      payload: Buffer.from('fw 1.0.0\n'.repeat(64)),
    });
    expect(upload.statusCode).toBe(201);
    await call('operator', 'POST', '/api/v1/groups', { name: 'east', filter: 'tag.region = east' });
    const spec = { name: 'r', release: 'fw@1.0.0', strategy: 'immediate' };
    const missing = await call('operator', 'POST', '/api/v1/rollouts', { ...spec, group: 'nope' });
    expect(missing.status).toBe(400);
    expect(missing.body.error.message).toContain('group nope does not exist');
    const neither = await call('operator', 'POST', '/api/v1/rollouts', spec);
    expect(neither.status).toBe(400);
    expect(neither.body.error.message).toContain('filter: is required');
    const rollout = await call('operator', 'POST', '/api/v1/rollouts', {
      ...spec,
      group: 'east',
      filter: 'id != e2',
    });
    expect(rollout.status).toBe(201);
    expect(rollout.body).toMatchObject({ filter: 'group = "east" and (id != e2)', totals: { targets: 1 } });
    await call('admin', 'POST', '/api/v1/tokens', {
      name: 'east-ops',
      role: 'viewer',
      scope: 'group = east',
    });
    const refused = await call('operator', 'DELETE', '/api/v1/groups/east');
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({
      code: 'CONFLICT',
      message: 'group east is in use by rollout r, token east-ops; change those first',
      details: {
        used_by: [
          { kind: 'rollout', name: 'r' },
          { kind: 'token', name: 'east-ops' },
        ],
      },
    });
    const scope = await call('admin', 'POST', '/api/v1/tokens', {
      name: 'x',
      role: 'viewer',
      scope: 'group = nope',
    });
    expect(scope.status).toBe(400);
  });
});
