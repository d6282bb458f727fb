/**
 * Release variants in process: a release of type `file` carries a `.swu` for SWUpdate and a `.mender` for
 * mender-client; one rollout offers a FleetD agent the release, a DDI device the `.swu` and a Mender device the
 * `.mender` (each download is that file's bytes); a client the release has no variant for fails its update with
 * the reason; bad variants are refused with 4xx and nothing kept. The store's part runs on every backend.
 */
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { hashSecret, newSecret } from '../src/registry/credentials.js';
import { type TestApp, testApp } from './support/app.js';
import { buildMenderArtifact, hasMenderArtifact } from './support/mender-artifact.js';
import { tempDir } from './support/processes.js';
import { forEachBackend, testRelease } from './support/stores.js';

const DDI = '/DEFAULT/controller/v1';

/** A .swu as `cpio -o -H newc` lays it out: sw-description first. */
function swu(members: Array<[string, string]>): Buffer {
  const hex = (n: number) => n.toString(16).padStart(8, '0');
  const pad = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
  const parts: Buffer[] = [];
  for (const [name, text] of [...members, ['TRAILER!!!', ''] as [string, string]]) {
    const data = Buffer.from(text);
    const fields = [1, 0o100644, 0, 0, 1, 0, data.length, 0, 0, 0, 0, name.length + 1, 0].map(hex).join('');
    const head = Buffer.concat([Buffer.from(`070701${fields}`), Buffer.from(`${name}\0`)]);
    parts.push(head, pad(head.length), data, pad(data.length));
  }
  return Buffer.concat(parts);
}

const blobPath = (t: TestApp, sha256: string) =>
  join(t.dataDir, 'blobs', 'sha256', sha256.slice(0, 2), sha256);

const run = hasMenderArtifact() ? describe : describe.skip;

run('release variants over the API', () => {
  const plain = Buffer.from('app 2.0.0 for FleetD agents\n');
  const image = swu([
    ['sw-description', 'software = { version = "2.0.0"; };'],
    ['app.bin', 'app 2.0.0\n'],
  ]);
  let menderFile: Buffer;
  let foreignMender: Buffer;
  beforeAll(() => {
    const dir = tempDir('fleetd-variants-');
    const build = (name: string, deviceTypes: string[]) =>
      readFileSync(buildMenderArtifact(dir, { name, deviceTypes, destDir: '/tmp/x', text: name }));
    menderFile = build('app-2.0.0', ['fleetd-dev']);
    foreignMender = build('app-other', ['other-dev']);
  }, 30_000);

  async function app(): Promise<TestApp> {
    const t = await testApp();
    onTestFinished(() => t.close());
    return t;
  }
  const upload = (t: TestApp, url: string, body: Buffer, headers = t.admin) =>
    t.app.inject({
      method: 'POST',
      url: `/api/v1${url}`,
      headers: { ...headers, 'content-type': 'application/octet-stream' },
      payload: body,
    });
  const operator = (t: TestApp, method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object) =>
    t.app.inject({ method, url: `/api/v1${url}`, headers: t.admin, ...(payload ? { payload } : {}) });
  async function release(t: TestApp, version = '2.0.0') {
    const created = await upload(
      t,
      `/artifacts?name=app&version=${version}&type=file&hardware=board&hardware=fleetd-dev`,
      plain,
    );
    expect(created.statusCode, created.body).toBe(201);
  }

  /** A device with a credential (a FleetD agent or, by its TargetToken, a SWUpdate device). */
  async function credentialed(t: TestApp, id: string): Promise<string> {
    await operator(t, 'POST', '/devices/import', { devices: [{ id, hardware_type: 'board' }] });
    return (await operator(t, 'POST', `/devices/${id}/credential`)).json().credential as string;
  }

  /** A mender-client enrolled by tenant token, its inventory sent; its id and JWT. */
  async function menderDevice(t: TestApp, serial: string): Promise<{ id: string; token: string }> {
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const tenant = (await operator(t, 'POST', '/enrollment-tokens', { uses: 1 })).json().token as string;
    const body = Buffer.from(
      `${JSON.stringify({ id_data: JSON.stringify({ serial }), tenant_token: tenant, pubkey: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString() })}\n`,
    );
    const auth = await t.app.inject({
      method: 'POST',
      url: '/api/devices/v1/authentication/auth_requests',
      headers: {
        'content-type': 'application/json',
        'x-men-signature': sign('sha256', body, pair.privateKey).toString('base64'),
      },
      payload: body,
    });
    expect(auth.statusCode, auth.body).toBe(200);
    const token = auth.body;
    const inventory = await t.app.inject({
      method: 'PUT',
      url: '/api/devices/v1/inventory/device/attributes',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      payload: [{ name: 'device_type', value: 'fleetd-dev' }],
    });
    expect(inventory.statusCode, inventory.body).toBe(200);
    const page = (
      await operator(t, 'GET', `/devices?filter=${encodeURIComponent(`tag.serial = ${serial}`)}`)
    ).json();
    return { id: page.devices[0].id as string, token };
  }
  const menderNext = (t: TestApp, token: string) =>
    t.app.inject({
      method: 'POST',
      url: '/api/devices/v2/deployments/device/deployments/next',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      payload: { device_provides: { device_type: 'fleetd-dev', artifact_name: 'app-1' } },
    });

  async function rollout(t: TestApp, devices: string[]) {
    const created = await operator(t, 'POST', '/rollouts', {
      name: 'app 2.0.0 everywhere',
      release: 'app@2.0.0',
      filter: `id in (${devices.join(', ')})`,
      strategy: 'immediate',
    });
    expect(created.statusCode, created.body).toBe(201);
    await t.engine.tick();
  }

  it('lists uploaded variants in the release, and one rollout gives each client its own file', async () => {
    const t = await app();
    await release(t);
    const withSwu = await upload(t, '/artifacts/app@2.0.0/variants/swupdate', image);
    expect(withSwu.statusCode, withSwu.body).toBe(201);
    expect((await upload(t, '/artifacts/app@2.0.0/variants/mender', menderFile)).statusCode).toBe(201);
    const shown = (await operator(t, 'GET', '/artifacts/app@2.0.0')).json();
    expect(shown.variants).toEqual([
      expect.objectContaining({ client: 'mender', size: menderFile.length }),
      expect.objectContaining({ client: 'swupdate', size: image.length }),
    ]);
    const swuSha = shown.variants[1].sha256 as string;
    expect((await operator(t, 'GET', '/artifacts')).json().artifacts[0].variants).toHaveLength(2);

    const agentCredential = await credentialed(t, 'agent-1');
    const ddi = `TargetToken ${await credentialed(t, 'sw-1')}`;
    expect(
      (await t.app.inject({ method: 'GET', url: `${DDI}/sw-1`, headers: { authorization: ddi } })).statusCode,
    ).toBe(200);
    const mender = await menderDevice(t, 'SN-1');
    await rollout(t, ['agent-1', 'sw-1', mender.id]);

    // The FleetD agent: the release itself.
    const beat = await t.app.inject({
      method: 'POST',
      url: '/api/device/v1/heartbeat',
      headers: { authorization: `Bearer ${agentCredential}` },
      payload: { device_id: 'agent-1' },
    });
    expect(beat.statusCode, beat.body).toBe(200);
    expect(beat.json().pending_updates[0].download_url).toBe(
      `/api/device/v1/artifacts/${shown.sha256 as string}`,
    );

    // The SWUpdate device: the .swu, its hashes and size, and its bytes.
    const poll = await t.app.inject({ method: 'GET', url: `${DDI}/sw-1`, headers: { authorization: ddi } });
    const base = new URL(poll.json()._links.deploymentBase.href as string);
    const deployment = (
      await t.app.inject({ method: 'GET', url: base.pathname, headers: { authorization: ddi } })
    ).json();
    const artifact = deployment.deployment.chunks[0].artifacts[0];
    expect(artifact).toMatchObject({
      filename: 'app-2.0.0.swu',
      size: image.length,
      hashes: { sha256: swuSha },
    });
    const href = new URL(artifact._links['download-http'].href as string);
    const swuDownload = await t.app.inject({
      method: 'GET',
      url: href.pathname,
      headers: { authorization: ddi },
    });
    expect(swuDownload.statusCode).toBe(200);
    expect(swuDownload.rawPayload.equals(image)).toBe(true);

    // The Mender device: the .mender, named as its header names it, and its bytes.
    const next = await menderNext(t, mender.token);
    expect(next.statusCode, next.body).toBe(200);
    expect(next.json().artifact).toMatchObject({
      artifact_name: 'app-2.0.0',
      device_types_compatible: ['fleetd-dev'],
    });
    const link = new URL(next.json().artifact.source.uri as string);
    const menderDownload = await t.app.inject({ method: 'GET', url: `${link.pathname}${link.search}` });
    expect(menderDownload.statusCode).toBe(200);
    expect(menderDownload.rawPayload.equals(menderFile)).toBe(true);

    // Deleting the release drops its variants' bytes with its own.
    for (const id of ['agent-1', 'sw-1', mender.id]) {
      const [update] = await t.store.updates.list({ deviceId: id, limit: 1 });
      await operator(t, 'POST', `/updates/${update!.id}/cancel`);
    }
    expect((await operator(t, 'DELETE', '/artifacts/app@2.0.0')).statusCode).toBe(200);
    expect(existsSync(blobPath(t, swuSha))).toBe(false);
    expect(await t.store.releases.blobInUse(swuSha)).toBe(false);
  });

  it('fails the update of a client the release has no variant for, with the reason; the dry run warns first', async () => {
    const t = await app();
    await release(t);
    expect((await upload(t, '/artifacts/app@2.0.0/variants/swupdate', image)).statusCode).toBe(201);
    const mender = await menderDevice(t, 'SN-2');
    const ddi = `TargetToken ${await credentialed(t, 'sw-2')}`;
    await t.app.inject({ method: 'GET', url: `${DDI}/sw-2`, headers: { authorization: ddi } });
    const dry = await operator(t, 'POST', '/rollouts?dry_run=true', {
      name: 'dry',
      release: 'app@2.0.0',
      filter: `id in (sw-2, ${mender.id})`,
      strategy: 'immediate',
    });
    expect(dry.statusCode, dry.body).toBe(200);
    // The SWUpdate device has its .swu: only the Mender device is warned.
    expect(dry.json().client_limits).toEqual([
      { device_id: mender.id, client: 'mender', limits: [expect.stringMatching(/type file\) will fail/)] },
    ]);

    await rollout(t, ['sw-2', mender.id]);
    expect((await menderNext(t, mender.token)).statusCode).toBe(204);
    const [failed] = await t.store.updates.list({ deviceId: mender.id, limit: 1 });
    expect(failed).toMatchObject({
      state: 'failed',
      error: expect.stringContaining(
        'release app@2.0.0 (type file) has no mender variant: mender-client installs only a Mender artifact',
      ),
    });
    const poll = await t.app.inject({ method: 'GET', url: `${DDI}/sw-2`, headers: { authorization: ddi } });
    expect(poll.json()._links.deploymentBase).toBeDefined();
  });

  it('a SWUpdate device given a release with no .swu fails its update instead of downloading it', async () => {
    const t = await app();
    await release(t);
    const ddi = `TargetToken ${await credentialed(t, 'sw-3')}`;
    await rollout(t, ['sw-3']);
    const poll = await t.app.inject({ method: 'GET', url: `${DDI}/sw-3`, headers: { authorization: ddi } });
    expect(poll.json()._links?.deploymentBase).toBeUndefined();
    const [update] = await t.store.updates.list({ deviceId: 'sw-3', limit: 1 });
    expect(update).toMatchObject({
      state: 'failed',
      error: expect.stringContaining('has no swupdate variant'),
    });
  });

  it('refuses bad variants with 4xx and keeps nothing', async () => {
    const t = await app();
    await release(t);
    const notCpio = Buffer.from('not a cpio archive at all');
    const refusals: Array<[string, Buffer, number, RegExp]> = [
      ['/artifacts/app@2.0.0/variants/swupdate', notCpio, 400, /^swupdate variant: a \.swu must be a cpio/],
      [
        '/artifacts/app@2.0.0/variants/swupdate',
        swu([['app.bin', 'x']]),
        400,
        /first member of a \.swu must be sw-description/,
      ],
      ['/artifacts/app@2.0.0/variants/mender', notCpio, 400, /^mender variant: /],
      ['/artifacts/app@2.0.0/variants/mender', foreignMender, 400, /none of the release's hardware/],
      ['/artifacts/app@2.0.0/variants/rauc', image, 400, /client "rauc" has no variants/],
      ['/artifacts/app@9.9.9/variants/swupdate', image, 404, /no release app@9\.9\.9/],
    ];
    for (const [url, body, status, message] of refusals) {
      const answer = await upload(t, url, body);
      expect(answer.statusCode, url).toBe(status);
      expect(answer.json().error.message).toMatch(message);
    }
    expect((await operator(t, 'GET', '/artifacts/app@2.0.0')).json().variants).toEqual([]);
    const stored = (await t.store.releases.list()).map((r) => r.sha256);
    for (const body of [notCpio, foreignMender]) {
      const sha = createHash('sha256').update(body).digest('hex');
      expect(stored).not.toContain(sha);
      expect(existsSync(blobPath(t, sha))).toBe(false);
    }

    // A .swu release needs no swupdate variant; a second variant of a client is a conflict.
    const swuRelease = await upload(t, '/artifacts?name=img&version=1.0.0&type=swu&hardware=board', image);
    expect(swuRelease.statusCode).toBe(201);
    expect((await upload(t, '/artifacts/img@1.0.0/variants/swupdate', image)).statusCode).toBe(400);
    expect((await upload(t, '/artifacts/app@2.0.0/variants/swupdate', image)).statusCode).toBe(201);
    const again = await upload(t, '/artifacts/app@2.0.0/variants/swupdate', image);
    expect(again.statusCode).toBe(409);

    // Uploading a variant takes releases.write, as uploading a release does.
    const viewer = newSecret('api');
    await t.store.createApiToken(
      { id: 'tok_viewer', name: 'viewer', role: 'viewer', createdAt: t.clock.now() },
      hashSecret(viewer),
    );
    const refused = await upload(t, '/artifacts/app@2.0.0/variants/mender', menderFile, {
      authorization: `Bearer ${viewer}`,
    });
    expect(refused.statusCode).toBe(403);
    expect(refused.json().error.message).toContain('releases.write');
  });
});

forEachBackend((backend) => {
  describe('release variants in the store', () => {
    it('keeps one variant per client, lists them by release, and keeps their blobs in use while the release lives', async () => {
      const store = await backend.open();
      await store.releases.create(testRelease('rel_a', '1.0.0', 1), 'test');
      const variant = {
        releaseId: 'rel_a',
        client: 'swupdate' as const,
        size: 3,
        sha256: 'a'.repeat(64),
        createdAt: 2,
      };
      await store.variants.add(variant, 'test');
      await expect(store.variants.add({ ...variant, sha256: 'b'.repeat(64) }, 'test')).rejects.toMatchObject({
        code: 'CONFLICT',
      });
      await store.variants.add({ ...variant, client: 'mender', sha256: 'c'.repeat(64) }, 'test');
      expect((await store.variants.of(['rel_a', 'rel_x'])).map((v) => [v.client, v.sha256[0]])).toEqual([
        ['mender', 'c'],
        ['swupdate', 'a'],
      ]);
      expect(await store.variants.of([])).toEqual([]);
      expect(await store.releases.blobInUse('a'.repeat(64))).toBe(true);
      const [event] = await store.listEvents({ typePrefix: 'release.variant_added', limit: 1 });
      expect(event?.data).toMatchObject({ name: 'fw', version: '1.0.0', client: 'swupdate' });
      await store.releases.delete('rel_a', 3, 'test');
      expect(await store.releases.blobInUse('a'.repeat(64))).toBe(false);
      await expect(store.variants.add({ ...variant, client: 'mender' }, 'test')).rejects.toMatchObject({
        code: 'NOT_FOUND',
      });
    });
  });
});
