/**
 * The Mender device API in-process, with requests shaped as mender-client 3.4 sends them (signed over the raw body
 * with its trailing newline): auth by tenant token or approval queue, refusals, the update check's three forms,
 * status codes the client requires, the signed download link, an aborted deployment, and the upload checks.
 */
import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type TestApp, testApp } from './support/app.js';
import { buildMenderArtifact, hasMenderArtifact, menderKeyPair } from './support/mender-artifact.js';
import { tempDir } from './support/processes.js';

const run = hasMenderArtifact() ? describe : describe.skip;

interface Client {
  privateKey: KeyObject;
  publicPem: string;
  serial: string;
}

function client(serial: string, type: 'rsa' | 'ec' | 'ed25519' = 'ec'): Client {
  const pair =
    type === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : type === 'ec'
        ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
        : generateKeyPairSync('ed25519');
  return {
    privateKey: pair.privateKey,
    publicPem: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    serial,
  };
}

run('Mender device API', () => {
  let t: TestApp;
  let dir: string;
  let artifact: string;
  let signedArtifact: string;
  let artifactKey: string;

  beforeAll(() => {
    dir = tempDir('fleetd-mender-api-');
    artifact = buildMenderArtifact(dir, {
      name: 'app-v1',
      deviceTypes: ['fleetd-dev'],
      destDir: '/tmp/x',
      text: 'v1',
    });
    const keys = menderKeyPair(join(dir, 'keys'), 'ec');
    artifactKey = keys.publicKey;
    signedArtifact = buildMenderArtifact(dir, {
      name: 'app-signed',
      deviceTypes: ['fleetd-dev'],
      destDir: '/tmp/x',
      text: 'signed',
      signKey: keys.privateKey,
    });
  }, 30_000);

  afterEach(async () => t?.close());

  const auth = (c: Client, tenantToken = '', signWith = c.privateKey) => {
    const body = Buffer.from(
      `${JSON.stringify({ id_data: JSON.stringify({ mac: '02:00:00:00:00:01', serial: c.serial }), tenant_token: tenantToken, pubkey: c.publicPem })}\n`,
    );
    const algorithm = signWith.asymmetricKeyType === 'ed25519' ? null : 'sha256';
    return t.app.inject({
      method: 'POST',
      url: '/api/devices/v1/authentication/auth_requests',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${tenantToken}`,
        'x-men-signature': sign(algorithm, body, signWith).toString('base64'),
      },
      payload: body,
    });
  };
  const device = (token: string, method: 'GET' | 'POST' | 'PUT', url: string, payload?: object) =>
    t.app.inject({
      method,
      url: `/api/devices${url}`,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(payload ? { payload: `${JSON.stringify(payload)}\n` } : {}),
    });
  const operator = (method: 'GET' | 'POST', url: string, payload?: object) =>
    t.app.inject({ method, url: `/api/v1${url}`, headers: t.admin, ...(payload ? { payload } : {}) });
  const upload = (query: string, bytes: Buffer) =>
    t.app.inject({
      method: 'POST',
      url: `/api/v1/artifacts?${query}`,
      headers: { ...t.admin, 'content-type': 'application/octet-stream' },
      payload: bytes,
    });
  const enrollmentToken = async (uses = 5) =>
    (await operator('POST', '/enrollment-tokens', { uses })).json().token as string;

  /** A device enrolled with a tenant token and its inventory sent; returns its id and token. */
  async function enrolled(c: Client): Promise<{ id: string; token: string }> {
    const answer = await auth(c, await enrollmentToken());
    expect(answer.statusCode, answer.body).toBe(200);
    const token = answer.body;
    const inventory = await device(token, 'PUT', '/v1/inventory/device/attributes', [
      { name: 'device_type', value: 'fleetd-dev' },
      { name: 'artifact_name', value: 'app-v0' },
    ]);
    expect(inventory.statusCode, inventory.body).toBe(200);
    const page = (
      await operator('GET', `/devices?filter=${encodeURIComponent(`tag.serial = ${c.serial}`)}`)
    ).json();
    return { id: page.devices[0].id as string, token };
  }

  it('enrolls with a tenant token for RSA, EC and Ed25519 keys; the device is client=mender with its identity', async () => {
    t = await testApp();
    for (const type of ['rsa', 'ec', 'ed25519'] as const) {
      const c = client(`SN-${type}`, type);
      const { id, token } = await enrolled(c);
      expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
      const d = (await operator('GET', `/devices/${id}`)).json();
      expect(d).toMatchObject({
        hardware_type: 'fleetd-dev',
        tags: { client: 'mender', serial: `SN-${type}`, artifact_name: 'app-v0' },
      });
      // Asking again with the same key needs no token use: the key is the device's proof.
      const again = await auth(c);
      expect(again.statusCode, again.body).toBe(200);
      expect(again.headers['content-type']).toMatch(/^application\/jwt/);
    }
  });

  it('refuses a bad signature, another key for a known identity, a forged token, and records the refusals', async () => {
    t = await testApp();
    const c = client('SN-1');
    const token = await enrollmentToken(1);
    const forged = await auth(c, token, client('SN-x').privateKey);
    expect(forged.statusCode).toBe(401);
    expect(forged.json().error.message).toMatch(/X-MEN-Signature does not verify/);
    const { token: jwt } = await enrolled(c);
    const impostor = await auth({ ...client('SN-1'), serial: 'SN-1' }, token);
    expect(impostor.statusCode).toBeGreaterThanOrEqual(400);
    const tampered = `${jwt.slice(0, -4)}AAAA`;
    expect((await device(tampered, 'GET', '/v1/deployments/device/deployments/next')).statusCode).toBe(401);
    const events = (await operator('GET', '/events?type=device.auth_refused')).json();
    const refusals = (events.events ?? events.items ?? []).filter(
      (e: { data?: { method?: string } }) => e.data?.method === 'mender',
    );
    expect(refusals.length).toBeGreaterThanOrEqual(2);
    expect(JSON.stringify(events)).not.toContain(token);
  });

  it('waits in the approval queue without a tenant token (--enrollment approve) until accepted', async () => {
    t = await testApp(undefined, { enrollment: 'approve' });
    const c = client('SN-queue');
    expect((await auth(c)).statusCode).toBe(401);
    const waiting = (await operator('GET', '/devices/pending')).json();
    const queued = (waiting.devices ?? []) as Array<{ device: { id: string; tags: Record<string, string> } }>;
    expect(queued).toHaveLength(1);
    expect(queued[0]!.device.tags).toMatchObject({ client: 'mender', serial: 'SN-queue' });
    expect((await auth(c)).statusCode).toBe(401);
    const accepted = await operator('POST', '/devices/accept', { ids: [queued[0]!.device.id] });
    expect(accepted.statusCode, accepted.body).toBe(200);
    const answer = await auth(c);
    expect(answer.statusCode, answer.body).toBe(200);
  });

  it("is judged by a connectivity class of client=mender: the client keeps its own poll interval, the server the class's thresholds", async () => {
    t = await testApp();
    const { id, token } = await enrolled(client('SN-hourly'));
    const set = await t.app.inject({
      method: 'PUT',
      url: '/api/v1/connectivity-classes/mender-hourly',
      headers: t.admin,
      payload: {
        match: { tag: { key: 'client', value: 'mender' } },
        heartbeat_interval: '1h',
        offline_after: '3h',
        abandoned_after: '30d',
      },
    });
    expect(set.statusCode, set.body).toBe(201);
    const check = await device(token, 'POST', '/v2/deployments/device/deployments/next', {
      device_provides: { artifact_name: 'app-v0', device_type: 'fleetd-dev' },
    });
    expect(check.statusCode).toBe(204);
    // An hourly poll (UpdatePollIntervalSeconds: 3600) is not offline after the server's 10 min.
    t.clock.advance(50 * 60_000);
    expect((await operator('GET', `/devices/${id}`)).json()).toMatchObject({
      status: 'online',
      connectivity_class: { name: 'mender-hourly', heartbeat_interval_sec: 3600, offline_after_sec: 10_800 },
    });
    t.clock.advance(3 * 3_600_000);
    expect((await operator('GET', `/devices/${id}`)).json().status).toBe('offline');
  });

  it('offers a deployment on every form of the update check, serves the signed link, and maps statuses (204)', async () => {
    t = await testApp();
    const uploaded = await upload(
      'name=app&version=1.0.1&type=mender&hardware=fleetd-dev',
      readFileSync(artifact),
    );
    expect(uploaded.statusCode, uploaded.body).toBe(201);
    const { id, token } = await enrolled(client('SN-deploy'));
    const provides = { artifact_name: 'app-v0', device_type: 'fleetd-dev' };
    expect(
      (
        await device(
          token,
          'GET',
          '/v1/deployments/device/deployments/next?artifact_name=app-v0&device_type=fleetd-dev',
        )
      ).statusCode,
    ).toBe(204);

    const assigned = await operator('POST', '/updates/assign', { devices: [id], release: 'app@1.0.1' });
    expect(assigned.statusCode, assigned.body).toBe(200);
    const v2 = await device(token, 'POST', '/v2/deployments/device/deployments/next', {
      device_provides: provides,
      update_control_map: true,
    });
    const v1 = await device(token, 'POST', '/v1/deployments/device/deployments/next', provides);
    const get = await device(
      token,
      'GET',
      '/v1/deployments/device/deployments/next?artifact_name=app-v0&device_type=fleetd-dev',
    );
    for (const answer of [v2, v1, get]) expect(answer.statusCode, answer.body).toBe(200);
    const deployment = v2.json();
    expect(deployment).toMatchObject({
      id: assigned.json().assigned[0].id,
      artifact: { artifact_name: 'app-v1', device_types_compatible: ['fleetd-dev'] },
    });

    const link = new URL(deployment.artifact.source.uri as string);
    const download = await t.app.inject({ method: 'GET', url: `${link.pathname}${link.search}` });
    expect(download.statusCode).toBe(200);
    expect(download.rawPayload.equals(readFileSync(artifact))).toBe(true);
    expect(download.headers['content-encoding']).toBeUndefined();
    const forged = await t.app.inject({
      method: 'GET',
      url: `${link.pathname}?expires=${link.searchParams.get('expires')}&sig=x${link.searchParams.get('sig')!.slice(1)}`,
    });
    expect(forged.statusCode).toBe(403);

    const status = (s: string) =>
      device(token, 'PUT', `/v1/deployments/device/deployments/${deployment.id}/status`, { status: s });
    for (const s of ['downloading', 'downloading', 'installing', 'installing'])
      expect((await status(s)).statusCode).toBe(204);
    expect((await t.store.updates.get(deployment.id))?.state).toBe('installing');
    expect((await status('success')).statusCode).toBe(204);
    await expect.poll(async () => (await t.store.updates.get(deployment.id))?.state).toBe('succeeded');
    expect(
      (await device(token, 'POST', '/v2/deployments/device/deployments/next', { device_provides: provides }))
        .statusCode,
    ).toBe(204);
    // The link dies with the deployment.
    expect((await t.app.inject({ method: 'GET', url: `${link.pathname}${link.search}` })).statusCode).toBe(
      403,
    );
  });

  it('answers 409 (aborted) on the status of a cancelled deployment', async () => {
    t = await testApp();
    await upload('name=app&version=1.0.1&type=mender&hardware=fleetd-dev', readFileSync(artifact));
    const { id, token } = await enrolled(client('SN-cancel'));
    const updateId = (
      await operator('POST', '/updates/assign', { devices: [id], release: 'app@1.0.1' })
    ).json().assigned[0].id;
    expect((await operator('POST', `/updates/${updateId}/cancel`)).statusCode).toBe(200);
    const answer = await device(token, 'PUT', `/v1/deployments/device/deployments/${updateId}/status`, {
      status: 'downloading',
    });
    expect(answer.statusCode).toBe(409);
  });

  it('checks an uploaded Mender artifact: format, hardware among its device types, signature with the configured key', async () => {
    t = await testApp(undefined, { menderArtifactKeyFiles: [artifactKey] });
    const garbage = await upload(
      'name=bad&version=1.0.0&type=mender&hardware=fleetd-dev',
      Buffer.alloc(8192, 1),
    );
    expect(garbage.statusCode).toBe(400);
    expect(garbage.json().error.message).toMatch(/^type mender: /);
    const foreign = await upload(
      'name=app&version=1.0.0&type=mender&hardware=other-dev',
      readFileSync(artifact),
    );
    expect(foreign.statusCode).toBe(400);
    expect(foreign.json().error.message).toMatch(
      /other-dev is not among the artifact's device types \(fleetd-dev\)/,
    );
    const signed = await upload(
      'name=app&version=1.0.2&type=mender&hardware=fleetd-dev',
      readFileSync(signedArtifact),
    );
    expect(signed.statusCode, signed.body).toBe(201);
  });

  it('refuses a signed artifact when no key to verify it is configured', async () => {
    t = await testApp();
    const signed = await upload(
      'name=app&version=1.0.2&type=mender&hardware=fleetd-dev',
      readFileSync(signedArtifact),
    );
    expect(signed.statusCode).toBe(400);
    expect(signed.json().error.message).toMatch(/no Mender artifact key/);
  });

  it('is off on a server that accepts devices by certificate only (--device-auth mtls)', async () => {
    t = await testApp(undefined, { deviceAuth: 'mtls' });
    const answer = await auth(client('SN-mtls'), await enrollmentToken());
    expect(answer.statusCode).toBeGreaterThanOrEqual(400);
    expect(answer.json().error.code).toBe('CERTIFICATE_REQUIRED');
    expect((await operator('GET', '/devices')).json().devices).toHaveLength(0);
  });

  it('says in the dry run, per device, what mender-client cannot do of the rollout', async () => {
    t = await testApp();
    await upload('name=app&version=1.0.1&type=mender&hardware=fleetd-dev', readFileSync(artifact));
    const { id } = await enrolled(client('SN-dry'));
    const plan = (spec: object) =>
      t.app.inject({ method: 'POST', url: '/api/v1/rollouts?dry_run=true', headers: t.admin, payload: spec });
    const soft = await plan({
      name: 'soft',
      release: 'app@1.0.1',
      filter: '',
      strategy: 'immediate',
      action: 'soft',
    });
    expect(soft.statusCode, soft.body).toBe(200);
    expect(soft.json().client_limits).toEqual([
      {
        device_id: id,
        client: 'mender',
        limits: ['mender-client has no consent step: a soft update installs at once'],
      },
    ]);
    const forced = await plan({ name: 'forced', release: 'app@1.0.1', filter: '', strategy: 'immediate' });
    expect(forced.json().client_limits).toEqual([]);
  });
});
