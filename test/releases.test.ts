/** Signed releases and the device-update protocol, over HTTP against a real SQLite file and blob store. */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateKeyPair, signManifest, verifyManifest } from '../src/artifacts/signing.js';
import { canonicalManifest } from '../src/core/manifest.js';
import { type TestApp, testApp } from './support/app.js';
import { tempDir } from './support/processes.js';

let t: TestApp;
beforeEach(async () => {
  t = await testApp();
});
afterEach(async () => {
  await t.close();
});

const payload = Buffer.from('firmware image 2.3.0 '.repeat(5000));
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function upload(query: string, body: Buffer, headers: Record<string, string> = {}) {
  return t.app.inject({
    method: 'POST',
    url: `/api/v1/artifacts?${query}`,
    headers: { ...t.admin, 'content-type': 'application/octet-stream', ...headers },
    payload: body,
  });
}

async function device(id: string, hardware = 'pos-x200', firmware = '2.1.0') {
  await t.app.inject({
    method: 'POST',
    url: '/api/v1/devices/import',
    headers: t.admin,
    payload: { devices: [{ id, hardware_type: hardware, firmware_version: firmware }] },
  });
  const r = await t.app.inject({ method: 'POST', url: `/api/v1/devices/${id}/credential`, headers: t.admin });
  return { authorization: `Bearer ${r.json().credential}` };
}

const heartbeat = (auth: Record<string, string>, id: string) =>
  t.app.inject({
    method: 'POST',
    url: '/api/device/v1/heartbeat',
    headers: auth,
    payload: { device_id: id },
  });
const report = (auth: Record<string, string>, update: string, body: object) =>
  t.app.inject({
    method: 'POST',
    url: `/api/device/v1/updates/${update}/status`,
    headers: auth,
    payload: body,
  });

describe('uploading releases', () => {
  it('stores the file by its sha256 and signs a canonical manifest with the server key', async () => {
    const r = await upload('name=pos-firmware&version=v2.3.0&hardware=pos-x200&hardware=pos-x100', payload);
    expect(r.statusCode, r.body).toBe(201);
    const release = r.json();
    expect(release).toMatchObject({
      name: 'pos-firmware',
      version: '2.3.0',
      type: 'firmware',
      size: payload.length,
    });
    expect(release.sha256).toBe(sha(payload));
    expect(JSON.parse(release.manifest)).toMatchObject({
      hardware: ['pos-x100', 'pos-x200'],
      sha256: sha(payload),
    });
    const keys = (await t.app.inject({ method: 'GET', url: '/api/v1/keys', headers: t.admin })).json().keys;
    expect(keys[0].key_id).toBe(release.key_id);
    expect(verifyManifest(release.manifest, release.signature, keys[0].public_key)).toBe(true);
  });

  it('a manifest signed by the server verifies with the openssl command line alone', async () => {
    const release = (await upload('name=fw&version=1.0.0&hardware=hw', payload)).json();
    const publicKey = (await t.app.inject({ method: 'GET', url: '/api/v1/keys', headers: t.admin })).json()
      .keys[0].public_key;
    const dir = tempDir();
    writeFileSync(join(dir, 'signing.pub'), publicKey);
    writeFileSync(join(dir, 'manifest.json'), release.manifest);
    writeFileSync(join(dir, 'manifest.sig'), Buffer.from(release.signature, 'base64'));
    const out = execFileSync(
      'openssl',
      [
        'pkeyutl',
        '-verify',
        '-pubin',
        '-inkey',
        'signing.pub',
        '-rawin',
        '-in',
        'manifest.json',
        '-sigfile',
        'manifest.sig',
      ],
      { cwd: dir, encoding: 'utf8' },
    );
    expect(out).toMatch(/Signature Verified Successfully/);
  });

  it('rejects a duplicate name@version and a bad version, naming the problem', async () => {
    expect((await upload('name=fw&version=1.0.0&hardware=hw', payload)).statusCode).toBe(201);
    const dup = await upload('name=fw&version=1.0.0&hardware=hw', Buffer.from('other'));
    expect(dup.statusCode).toBe(409);
    expect(dup.json().error.message).toMatch(/fw@1\.0\.0 exists already/);
    const bad = await upload('name=fw&version=one&hardware=hw', payload);
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toMatch(/"one" is not a semantic version/);
    const missing = await upload('name=fw&version=2.0.0', payload);
    expect(missing.statusCode).toBe(400);
  });

  it('accepts a manifest signed offline by a trusted key, and refuses an untrusted or mismatching one', async () => {
    const ci = generateKeyPair();
    const manifest = canonicalManifest({
      name: 'offline',
      version: '1.2.3',
      type: 'file',
      hardware: ['hw'],
      size: payload.length,
      sha256: sha(payload),
      created: Date.now(),
    });
    const signed = (text: string, key = ci.privateKeyPem) => ({
      'x-fleetd-manifest': Buffer.from(text).toString('base64'),
      'x-fleetd-signature': signManifest(text, key),
    });
    const untrusted = await upload('', payload, signed(manifest));
    expect(untrusted.statusCode).toBe(400);
    expect(untrusted.json().error.message).toMatch(/does not verify with any key this server trusts/);

    // Trust the CI key, as `fleetd server --trusted-key ci.pub` does.
    t.keyring.trusted.push({
      keyId: 'ci',
      publicKey: (await import('node:crypto')).createPublicKey(ci.publicKeyPem),
      source: 'ci.pub',
    });
    const wrongBytes = await upload('', Buffer.concat([payload, Buffer.from('!')]), signed(manifest));
    expect(wrongBytes.statusCode).toBe(400);
    const ok = await upload('', payload, signed(manifest));
    expect(ok.statusCode, ok.body).toBe(201);
    expect(ok.json()).toMatchObject({
      name: 'offline',
      version: '1.2.3',
      key_id: 'ci',
      signature: signed(manifest)['x-fleetd-signature'],
    });
  });
});

describe('the device-update protocol', () => {
  async function assigned(deviceId: string) {
    const release = (await upload('name=pos-firmware&version=2.3.0&hardware=pos-x200', payload)).json();
    const auth = await device(deviceId);
    const a = await t.app.inject({
      method: 'POST',
      url: '/api/v1/updates/assign',
      headers: t.admin,
      payload: { release: 'pos-firmware@2.3.0', devices: [deviceId] },
    });
    expect(a.statusCode, a.body).toBe(200);
    return { release, auth, update: a.json().assigned[0].id as string };
  }

  it('a heartbeat carries the pending update with its signed manifest and download URL', async () => {
    const { release, auth, update } = await assigned('pos-1');
    const hb = (await heartbeat(auth, 'pos-1')).json();
    expect(hb.pending_updates).toEqual([
      {
        id: update,
        rollout_id: null,
        state: 'notified',
        last_seq: 0,
        action: 'install',
        manifest: release.manifest,
        signature: release.signature,
        download_url: `/api/device/v1/artifacts/${release.sha256}`,
        retry_after: null,
        soft: false,
      },
    ]);
  });

  it('serves the artifact with Range, ETag and If-Range, only to assigned devices', async () => {
    const { release, auth } = await assigned('pos-2');
    const url = `/api/device/v1/artifacts/${release.sha256}`;
    const full = await t.app.inject({ method: 'GET', url, headers: auth });
    expect(full.statusCode).toBe(200);
    expect(full.headers['accept-ranges']).toBe('bytes');
    expect(full.headers.etag).toBe(`"${release.sha256}"`);
    expect(Number(full.headers['content-length'])).toBe(payload.length);
    expect(full.rawPayload.equals(payload)).toBe(true);
    const part = await t.app.inject({ method: 'GET', url, headers: { ...auth, range: 'bytes=1000-' } });
    expect(part.statusCode).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 1000-${payload.length - 1}/${payload.length}`);
    expect(part.rawPayload.equals(payload.subarray(1000))).toBe(true);
    const stale = await t.app.inject({
      method: 'GET',
      url,
      headers: { ...auth, range: 'bytes=1000-', 'if-range': '"other"' },
    });
    expect(stale.statusCode).toBe(200);
    const past = await t.app.inject({
      method: 'GET',
      url,
      headers: { ...auth, range: `bytes=${payload.length}-` },
    });
    expect(past.statusCode).toBe(416);
    const stranger = await device('pos-3');
    expect((await t.app.inject({ method: 'GET', url, headers: stranger })).statusCode).toBe(403);
  });

  it('reports are idempotent and ordered by seq; an impossible transition is a 409', async () => {
    const { auth, update } = await assigned('pos-4');
    await heartbeat(auth, 'pos-4');
    expect((await report(auth, update, { seq: 1, state: 'downloading', progress: 10 })).json()).toEqual({
      accepted: true,
      state: 'downloading',
    });
    expect((await report(auth, update, { seq: 1, state: 'downloading', progress: 10 })).json()).toEqual({
      accepted: false,
      state: 'downloading',
    });
    expect((await report(auth, update, { seq: 3, state: 'installing' })).json().accepted).toBe(true);
    // seq 2 arrives late: harmless.
    expect((await report(auth, update, { seq: 2, state: 'downloading', progress: 90 })).json()).toEqual({
      accepted: false,
      state: 'installing',
    });
    const backwards = await report(auth, update, { seq: 4, state: 'notified' });
    expect(backwards.statusCode).toBe(409);
    expect(backwards.json().error.code).toBe('TRANSITION_NOT_ALLOWED');
    expect((await report(auth, update, { seq: 5, state: 'verifying' })).json().accepted).toBe(true);
    expect((await report(auth, update, { seq: 6, state: 'succeeded' })).json().accepted).toBe(true);
    const u = (
      await t.app.inject({ method: 'GET', url: `/api/v1/updates/${update}`, headers: t.admin })
    ).json();
    expect(u).toMatchObject({ state: 'succeeded', progress: 100, from_version: '2.1.0' });
    expect((await heartbeat(auth, 'pos-4')).json().pending_updates).toEqual([]);
    const events = (
      await t.app.inject({
        method: 'GET',
        url: '/api/v1/events',
        query: { device: 'pos-4', type: 'update.' },
        headers: t.admin,
      })
    ).json().events;
    expect(events.map((e: { type: string }) => e.type)).toEqual([
      'update.pending',
      'update.notified',
      'update.downloading',
      'update.installing',
      'update.verifying',
      'update.succeeded',
    ]);
  });

  it('a failure is recorded with its reason; another device cannot report on this update', async () => {
    const { auth, update } = await assigned('pos-5');
    const other = await device('pos-6');
    expect((await report(other, update, { seq: 1, state: 'failed', error: 'x' })).statusCode).toBe(404);
    const r = await report(auth, update, { seq: 1, state: 'failed', error: 'signature mismatch' });
    expect(r.json()).toEqual({ accepted: true, state: 'failed' });
    const u = (
      await t.app.inject({ method: 'GET', url: `/api/v1/updates/${update}`, headers: t.admin })
    ).json();
    expect(u).toMatchObject({ state: 'failed', error: 'signature mismatch', attempts: 1 });
    const bad = await report(auth, update, { seq: 0, state: 'nonsense' });
    expect(bad.statusCode).toBe(400);
  });

  it('assignment skips devices it cannot apply to, and a release in use cannot be deleted', async () => {
    const { update } = await assigned('pos-7');
    await device('pos-x100-1', 'pos-x100');
    await device('pos-current', 'pos-x200', '2.3.0');
    const a = await t.app.inject({
      method: 'POST',
      url: '/api/v1/updates/assign',
      headers: t.admin,
      payload: { release: 'pos-firmware@2.3.0', devices: ['pos-x100-1', 'pos-current', 'ghost'] },
    });
    expect(a.json().assigned).toEqual([]);
    expect(a.json().skipped).toEqual([
      { device_id: 'pos-x100-1', reason: 'hardware pos-x100 is not one of pos-x200' },
      { device_id: 'pos-current', reason: 'already runs 2.3.0' },
      { device_id: 'ghost', reason: 'not registered' },
    ]);
    const del = await t.app.inject({
      method: 'DELETE',
      url: '/api/v1/artifacts/pos-firmware@2.3.0',
      headers: t.admin,
    });
    expect(del.statusCode).toBe(409);
    await t.app.inject({ method: 'POST', url: `/api/v1/updates/${update}/cancel`, headers: t.admin });
    const ok = await t.app.inject({
      method: 'DELETE',
      url: '/api/v1/artifacts/pos-firmware@2.3.0',
      headers: t.admin,
    });
    expect(ok.statusCode).toBe(200);
    expect(
      (await t.app.inject({ method: 'GET', url: '/api/v1/artifacts', headers: t.admin })).json().artifacts,
    ).toEqual([]);
  });
});

describe('artifact offload to a web server in front', () => {
  it('authorises the device and names the file for nginx to send (X-Accel-Redirect)', async () => {
    const offload = await testApp(undefined, { artifactOffload: '/_fleetd_blobs' });
    try {
      const up = await offload.app.inject({
        method: 'POST',
        url: '/api/v1/artifacts?name=fw&version=1.0.0&hardware=hw',
        headers: { ...offload.admin, 'content-type': 'application/octet-stream' },
        payload,
      });
      const sha256 = up.json().sha256 as string;
      await offload.app.inject({
        method: 'POST',
        url: '/api/v1/devices/import',
        headers: offload.admin,
        payload: {
          devices: [
            { id: 'd1', hardware_type: 'hw' },
            { id: 'd2', hardware_type: 'hw' },
          ],
        },
      });
      const auth = async (id: string) => {
        const r = await offload.app.inject({
          method: 'POST',
          url: `/api/v1/devices/${id}/credential`,
          headers: offload.admin,
        });
        return { authorization: `Bearer ${r.json().credential}` };
      };
      const d1 = await auth('d1');
      const d2 = await auth('d2');
      await offload.app.inject({
        method: 'POST',
        url: '/api/v1/updates/assign',
        headers: offload.admin,
        payload: { release: 'fw@1.0.0', devices: ['d1'] },
      });
      const url = `/api/device/v1/artifacts/${sha256}`;
      const r = await offload.app.inject({ method: 'GET', url, headers: d1 });
      expect(r.statusCode).toBe(200);
      expect(r.headers['x-accel-redirect']).toBe(`/_fleetd_blobs/sha256/${sha256.slice(0, 2)}/${sha256}`);
      expect(r.rawPayload.length).toBe(0);
      expect((await offload.app.inject({ method: 'GET', url, headers: d2 })).statusCode).toBe(403);
    } finally {
      await offload.close();
    }
  });
});
