/**
 * What the audit log keeps of a change's target before and after it, for the routes that record it (tokens,
 * roles, webhooks, enrollment tokens, tag edits, decommissioning, releases, rollouts, configuration, groups,
 * windows, delivery, commands), and never a secret: the app in-process.
 */
import { afterEach, beforeEach, expect, it } from 'vitest';
import type { AuditEntryJson } from '../src/protocol/audit.js';
import { type TestApp, testApp } from './support/app.js';

let t: TestApp;
beforeEach(async () => {
  t = await testApp();
});
afterEach(async () => {
  await t.close();
});

async function call(method: 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, payload?: object) {
  const r = await t.app.inject({ method, url, headers: t.admin, ...(payload ? { payload } : {}) });
  expect(r.statusCode, r.body).toBeLessThan(300);
  return (r.body === '' ? {} : r.json()) as Record<string, unknown>;
}

async function change(action: string): Promise<Pick<AuditEntryJson, 'before' | 'after' | 'outcome'>> {
  const r = await t.app.inject({ method: 'GET', url: '/api/v1/audit?limit=1000', headers: t.admin });
  // Newest first: the latest change of that action.
  const entry = (r.json() as { entries: AuditEntryJson[] }).entries.find((e) => e.action === action);
  expect(entry, action).toBeDefined();
  return { before: entry!.before, after: entry!.after, outcome: entry!.outcome };
}

it('records tokens, roles and webhooks as made and as removed, without their secrets', async () => {
  const token = await call('POST', '/api/v1/tokens', { name: 'ci', role: 'viewer', expires_in: '1d' });
  await call('DELETE', `/api/v1/tokens/${token.id}`);
  await call('POST', '/api/v1/roles', { name: 'uploader', permissions: ['releases.write'] });
  await call('DELETE', '/api/v1/roles/uploader');
  const hook = await call('POST', '/api/v1/webhooks', {
    url: 'https://hooks.example.com/fleet?key=in-the-query',
    types: ['rollout.'],
    secret: 'a-webhook-secret-of-enough-length',
  });
  await call('DELETE', `/api/v1/webhooks/${hook.id}`);

  expect(await change('POST /api/v1/tokens')).toEqual({
    before: null,
    after: { name: 'ci', role: 'viewer', scope: null, expires_at: '2026-11-23T12:00:00.000Z' },
    outcome: 201,
  });
  expect(await change('DELETE /api/v1/tokens/:id')).toMatchObject({
    before: { name: 'ci', role: 'viewer', revoked_at: null },
    after: { name: 'ci', role: 'viewer', revoked_at: '2026-11-22T12:00:00.000Z' },
  });
  expect(await change('POST /api/v1/roles')).toMatchObject({
    before: null,
    after: { name: 'uploader', permissions: ['releases.write'] },
  });
  expect(await change('DELETE /api/v1/roles/:name')).toMatchObject({
    before: { name: 'uploader', permissions: ['releases.write'] },
    after: null,
  });
  const shownHook = {
    url: 'https://hooks.example.com/fleet?key=redacted',
    types: ['rollout.'],
    rollout: null,
  };
  expect(await change('POST /api/v1/webhooks')).toMatchObject({ before: null, after: shownHook });
  expect(await change('DELETE /api/v1/webhooks/:id')).toMatchObject({ before: shownHook, after: null });

  const everything = JSON.stringify(await t.store.audit.list({ limit: 1000 }));
  expect(everything).not.toContain(token.token as string);
  expect(everything).not.toContain('a-webhook-secret-of-enough-length');
  expect(everything).not.toContain('in-the-query');
});

it('records an enrollment token revoked, a tag edit and a device decommissioned', async () => {
  const enrollment = await call('POST', '/api/v1/enrollment-tokens', { uses: 3, tags: { site: 'lab' } });
  await call('DELETE', `/api/v1/enrollment-tokens/${enrollment.id}`);
  await call('POST', '/api/v1/devices/import', {
    devices: [{ id: 'd1', tags: { region: 'west' } }, { id: 'd2', tags: { region: 'east' } }, { id: 'd3' }],
  });
  await call('POST', '/api/v1/devices/tags', {
    filter: 'tag.region = west or id = d3',
    set: { tier: 'gold' },
  });
  await call('POST', '/api/v1/devices/d2/decommission');

  expect(await change('POST /api/v1/enrollment-tokens')).toMatchObject({
    before: null,
    after: { uses_left: 3, tags: { site: 'lab' }, claim: null },
  });
  expect(await change('POST /api/v1/devices/import')).toMatchObject({
    after: { created: 3, updated: 0, devices: ['d1', 'd2', 'd3'] },
  });
  expect(await change('DELETE /api/v1/enrollment-tokens/:id')).toMatchObject({
    before: { revoked_at: null },
    after: { revoked_at: '2026-11-22T12:00:00.000Z' },
  });
  const tagged = await change('POST /api/v1/devices/tags');
  expect(tagged.before).toBeNull();
  expect(tagged.after).toEqual({ set: { tier: 'gold' }, remove: [], changed: 2, devices: ['d1', 'd3'] });
  expect(await change('POST /api/v1/devices/:id/decommission')).toMatchObject({
    before: { status: 'unknown' },
    after: { status: 'decommissioned' },
  });
  const everything = JSON.stringify(await t.store.audit.list({ limit: 1000 }));
  expect(everything).not.toContain(enrollment.token as string);
});

it('records a release uploaded and deleted, a rollout created and configuration set and removed', async () => {
  await call('POST', '/api/v1/devices/import', { devices: [{ id: 'dev-1', hardware_type: 'hw' }] });
  const upload = async (version: string) => {
    const r = await t.app.inject({
      method: 'POST',
      url: `/api/v1/artifacts?name=fw&version=${version}&type=firmware&hardware=hw`,
      headers: { ...t.admin, 'content-type': 'application/octet-stream' },
      payload: Buffer.from(`fw ${version}`),
    });
    expect(r.statusCode, r.body).toBe(201);
    return r.json() as { sha256: string };
  };
  const kept = await upload('2.0.0');
  const dropped = await upload('2.0.1');
  await call('DELETE', '/api/v1/artifacts/fw@2.0.1');
  await call('POST', '/api/v1/rollouts', {
    name: 'west',
    release: 'fw@2.0.0',
    filter: 'id = dev-1',
    strategy: 'immediate',
  });
  await call('PUT', '/api/v1/config/base', { document: { ntp: 'pool', api_key: 'a-config-secret' } });
  const first = await change('PUT /api/v1/config/:name');
  await call('PUT', '/api/v1/config/base', {
    document: { ntp: 'pool2', api_key: 'a-config-secret' },
    filter: 'id = dev-1',
  });
  const second = await change('PUT /api/v1/config/:name');
  await call('DELETE', '/api/v1/config/base');

  expect(await change('DELETE /api/v1/artifacts/:ref')).toMatchObject({
    before: { name: 'fw', version: '2.0.1', type: 'firmware', sha256: dropped.sha256, size: 8, variants: 0 },
    after: null,
  });
  const audit = await t.store.audit.list({ limit: 1000 });
  const uploads = audit.filter((e) => e.action === 'POST /api/v1/artifacts').map((e) => e.after);
  expect(uploads).toContainEqual({
    name: 'fw',
    version: '2.0.0',
    type: 'firmware',
    sha256: kept.sha256,
    size: 8,
  });
  expect(await change('POST /api/v1/rollouts')).toEqual({
    before: null,
    after: { name: 'west', release: 'fw@2.0.0', strategy: 'immediate', filter: 'id = dev-1', targets: 1 },
    outcome: 201,
  });
  expect(first).toMatchObject({ before: null, after: { version: 1, target: 'fleet' } });
  expect(second.before).toEqual(first.after);
  expect(second.after).toMatchObject({ version: 2, target: 'filter', filter: 'id = dev-1' });
  expect((second.after as { hash: string }).hash).not.toBe((first.after as { hash: string }).hash);
  expect(await change('DELETE /api/v1/config/:name')).toMatchObject({ before: second.after, after: null });
  expect(JSON.stringify(audit)).not.toContain('a-config-secret');
});

it('records groups, their members, device windows, delivery, commands and imports by counts and names', async () => {
  await call('POST', '/api/v1/devices/import', {
    devices: [{ id: 'd1' }, { id: 'd2' }, { id: 'd3' }],
  });
  await call('POST', '/api/v1/groups', { name: 'lab', description: 'bench' });
  await call('PATCH', '/api/v1/groups/lab', { description: 'the bench' });
  await call('POST', '/api/v1/groups/lab/add', { ids: ['d1', 'd2', 'nobody'] });
  const added = await change('POST /api/v1/groups/:name/add');
  await call('POST', '/api/v1/groups/lab/remove', { ids: ['d2'] });
  const removed = await change('POST /api/v1/groups/:name/remove');
  await call('DELETE', '/api/v1/groups/lab');
  await call('PUT', '/api/v1/devices/d1/windows', { windows: [{ start: '01:00', end: '03:00' }] });
  await call('DELETE', '/api/v1/devices/d1/windows');
  await call('PUT', '/api/v1/devices/d2/delivery', {
    method: 'ssh',
    host: '10.0.0.9',
    user: 'root',
    host_key: `SHA256:${'A'.repeat(43)}`,
    install_command: 'install --password a-delivery-secret "$FLEETD_ARTIFACT"',
  });
  await call('PUT', '/api/v1/devices/d2/delivery', {
    method: 'http_push',
    url: 'http://10.0.0.9/update?token=a-push-secret',
  });
  const pushed = await change('PUT /api/v1/devices/:id/delivery');
  await call('DELETE', '/api/v1/devices/d2/delivery');
  await call('POST', '/api/v1/commands', { filter: 'id = d1 or id = d3', command: { kind: 'reboot' } });

  expect(await change('POST /api/v1/devices/import')).toMatchObject({
    before: null,
    after: { created: 3, updated: 0, devices: ['d1', 'd2', 'd3'] },
  });
  const lab = { name: 'lab', kind: 'static', filter: null };
  expect(await change('POST /api/v1/groups')).toMatchObject({
    before: null,
    after: { ...lab, description: 'bench' },
  });
  expect(await change('PATCH /api/v1/groups/:name')).toMatchObject({
    before: { ...lab, description: 'bench' },
    after: { ...lab, description: 'the bench' },
  });
  expect(added).toMatchObject({
    before: { members: 0 },
    after: { members: 2, added: 2, devices: ['d1', 'd2'] },
  });
  expect(removed).toMatchObject({
    before: { members: 2 },
    after: { members: 1, removed: 1, devices: ['d2'] },
  });
  expect(await change('DELETE /api/v1/groups/:name')).toMatchObject({
    before: { ...lab, description: 'the bench' },
    after: null,
  });
  const windows = await change('PUT /api/v1/devices/:id/windows');
  expect(windows.before).toBeNull();
  expect(windows.after).toMatchObject({ source: 'operator', windows: [{ start: '01:00', end: '03:00' }] });
  expect(await change('DELETE /api/v1/devices/:id/windows')).toMatchObject({
    before: windows.after,
    after: null,
  });
  expect(pushed).toMatchObject({
    before: { method: 'ssh', host: '10.0.0.9', port: 22, user: 'root' },
    after: { method: 'http_push', url: 'http://10.0.0.9/update' },
  });
  expect(await change('DELETE /api/v1/devices/:id/delivery')).toMatchObject({
    before: pushed.after,
    after: null,
  });
  expect(await change('POST /api/v1/commands')).toMatchObject({
    before: null,
    after: { kind: 'reboot', targets: 2 },
  });
  const everything = JSON.stringify(await t.store.audit.list({ limit: 1000 }));
  expect(everything).not.toContain('a-delivery-secret');
  expect(everything).not.toContain('a-push-secret');
});
