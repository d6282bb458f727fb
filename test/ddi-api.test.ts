/**
 * The hawkBit DDI API in process, on every store backend, with the requests SWUpdate sends (bodies as observed
 * on the wire, unescaped details included): a TargetToken device and a GatewayToken device poll, are offered a
 * rollout's update, download it with Range, drive it by feedback to succeeded, are told to cancel when their
 * rollout is paused or cancelled, and keep their configData as tags a filter selects.
 */
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { actionIdOf } from '../src/protocol/ddi.js';
import { hashSecret, newSecret } from '../src/registry/credentials.js';
import { createServer } from '../src/server/serve.js';
import type { Store } from '../src/store/store.js';
import { tempDir } from './support/processes.js';
import { forEachBackend } from './support/stores.js';

const BASE = '/DEFAULT/controller/v1';

/** A .swu as `cpio -o -H newc` lays it out: sw-description first (the content is not read by the server). */
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

const feedback = (id: number, execution: string, finished: string, detail: string) =>
  `{ "id": ${id}, "time": "20261204T135926", "status": { "result": { "progress": { "cnt" : 0, "of" : 1 }, "finished": "${finished}" }, "execution": "${execution}", "details" : [ "${detail}" ] } }`;

interface Harness {
  app: FastifyInstance;
  store: Store;
  clock: ManualClock;
  tick(): Promise<void>;
  admin: { authorization: string };
}

async function harness(store: Store): Promise<Harness> {
  const clock = new ManualClock(Date.parse('2026-12-06T12:00:00Z'));
  const adminToken = newSecret('admin');
  await store.createApiToken(
    { id: 'tok_admin', name: 'admin', role: 'admin', createdAt: clock.now() },
    hashSecret(adminToken),
  );
  const parts = await createServer({
    dataDir: tempDir(),
    store,
    clock,
    heartbeatIntervalSec: 300,
    maxArtifactBytes: 1024 * 1024,
    logLevel: 'silent',
  });
  return {
    app: parts.app,
    store,
    clock,
    tick: () => parts.engine.tick(),
    admin: { authorization: `Bearer ${adminToken}` },
  };
}

forEachBackend((backend) => {
  describe('hawkBit DDI API', () => {
    let h: Harness;
    let image: Buffer;
    beforeEach(async () => {
      h = await harness(await backend.open());
      image = swu([
        ['sw-description', 'software = { version = "1.0.1"; };'],
        ['payload.txt', 'hello from FleetD 1.0.1\n'],
      ]);
      return () => h.app.close();
    });

    const operator = (method: 'GET' | 'POST', url: string, payload?: unknown) =>
      h.app.inject({
        method,
        url: `/api/v1${url}`,
        headers: h.admin,
        ...(payload === undefined ? {} : { payload: payload as object }),
      });

    async function upload(version: string, body: Buffer, type = 'swu') {
      return h.app.inject({
        method: 'POST',
        url: `/api/v1/artifacts?name=image&version=${version}&type=${type}&hardware=board`,
        headers: { ...h.admin, 'content-type': 'application/octet-stream' },
        payload: body,
      });
    }

    /** A device with a TargetToken: imported, then given a credential by the operator. */
    async function targetDevice(id: string): Promise<string> {
      await operator('POST', '/devices/import', { devices: [{ id, hardware_type: 'board' }] });
      const issued = await operator('POST', `/devices/${id}/credential`);
      expect(issued.statusCode, issued.body).toBe(201);
      return `TargetToken ${issued.json().credential}`;
    }

    const device = (authorization: string) => ({
      get: (url: string, headers: Record<string, string> = {}) =>
        h.app.inject({ method: 'GET', url: `${BASE}${url}`, headers: { authorization, ...headers } }),
      head: (url: string) =>
        h.app.inject({ method: 'HEAD', url: `${BASE}${url}`, headers: { authorization } }),
      send: (method: 'POST' | 'PUT', url: string, body: string) =>
        h.app.inject({
          method,
          url: `${BASE}${url}`,
          headers: { authorization, 'content-type': 'application/json' },
          payload: body,
        }),
    });

    async function rollout(extra: Record<string, unknown> = {}) {
      const created = await operator('POST', '/rollouts', {
        name: 'to 1.0.1',
        release: 'image@1.0.1',
        filter: 'tag.client = swupdate',
        strategy: 'immediate',
        ...extra,
      });
      expect(created.statusCode, created.body).toBe(201);
      await h.tick();
      return created.json().id as string;
    }

    it('refuses a .swu upload that is not a cpio archive with sw-description first, and takes one that is', async () => {
      const notCpio = await upload('1.0.0', Buffer.from('just some bytes, not an archive'));
      expect(notCpio.statusCode).toBe(400);
      expect(notCpio.json().error.message).toMatch(/^type swu: a \.swu must be a cpio archive/);
      const wrongFirst = await upload('1.0.0', swu([['payload.txt', 'x']]));
      expect(wrongFirst.statusCode).toBe(400);
      expect(wrongFirst.json().error.message).toContain('the first member of a .swu must be sw-description');
      expect((await operator('GET', '/artifacts')).json().releases ?? []).toEqual([]);
      const good = await upload('1.0.1', image);
      expect(good.statusCode, good.body).toBe(201);
      expect(good.json()).toMatchObject({ type: 'swu', size: image.length });
    });

    it('a TargetToken device polls, installs over feedback and succeeds; the poll is a heartbeat', async () => {
      const d = device(await targetDevice('sw-1'));
      const idle = await d.get('/sw-1');
      expect(idle.statusCode, idle.body).toBe(200);
      expect(idle.json()).toEqual({
        config: { polling: { sleep: '00:05:00' } },
        _links: { configData: { href: `http://localhost:80${BASE}/sw-1/configData` } },
      });
      const registered = (await operator('GET', '/devices/sw-1')).json();
      expect(registered).toMatchObject({ status: 'online', tags: { client: 'swupdate' } });

      // SWUpdate's identify section, unescaped as it sends it.
      const config = await d.send(
        'PUT',
        '/sw-1/configData',
        '{ "id": "", "time": "20261204T135924", "status": { "result": { "finished": "success" }, "execution": "closed", "details" : [ "" ] }, "data" : {  "serial": "SN-0001","board": "fleetd-board" } }',
      );
      expect(config.statusCode).toBe(200);
      // Sent: no longer linked (SWUpdate sends it whenever linked, before looking at any update).
      expect((await d.get('/sw-1')).json()._links).toEqual({});
      const filtered = await operator('GET', `/devices?filter=${encodeURIComponent('tag.serial = SN-0001')}`);
      expect(filtered.json().devices.map((x: { id: string }) => x.id)).toEqual(['sw-1']);

      expect((await upload('1.0.1', image)).statusCode).toBe(201);
      await rollout();
      const poll = await d.get('/sw-1');
      const href: string = poll.json()._links.deploymentBase.href;
      const [update] = await h.store.updates.list({ deviceId: 'sw-1', limit: 1 });
      const action = actionIdOf(update!.id);
      expect(href).toBe(`http://localhost:80${BASE}/sw-1/deploymentBase/${action}`);

      const deployment = await d.get(`/sw-1/deploymentBase/${action}`);
      expect(deployment.statusCode, deployment.body).toBe(200);
      const { createHash } = await import('node:crypto');
      const digest = (kind: string) => createHash(kind).update(image).digest('hex');
      const body = deployment.json();
      expect(body).toMatchObject({
        id: String(action),
        deployment: {
          update: 'forced',
          chunks: [
            {
              part: 'os',
              version: '1.0.1',
              name: 'image',
              artifacts: [
                {
                  filename: 'image-1.0.1.swu',
                  size: image.length,
                  hashes: { sha1: digest('sha1'), md5: digest('md5'), sha256: digest('sha256') },
                },
              ],
            },
          ],
        },
      });
      const download = new URL(body.deployment.chunks[0].artifacts[0]._links.download.href).pathname.slice(
        BASE.length,
      );

      expect(
        (
          await d.send(
            'POST',
            `/sw-1/deploymentBase/${action}/feedback`,
            feedback(action, 'proceeding', 'none', 'Installing Update Chunk Artifacts.'),
          )
        ).statusCode,
      ).toBe(200);
      const head = await d.head(download);
      expect(head.statusCode).toBe(200);
      expect(head.headers['content-length']).toBe(String(image.length));
      const full = await d.get(download);
      expect(full.rawPayload.equals(image)).toBe(true);
      const resumed = await d.get(download, { range: 'bytes=100-' });
      expect(resumed.statusCode).toBe(206);
      expect(resumed.headers['content-range']).toBe(`bytes 100-${image.length - 1}/${image.length}`);
      expect(resumed.rawPayload.equals(image.subarray(100))).toBe(true);

      // An installer log batch with an unescaped quote, then the end of the install: awaiting confirmation.
      for (const detail of [
        '[install_raw_file] : Installing "payload.txt"',
        'Installed Chunk.',
        'All Chunks Installed.',
      ]) {
        const r = await d.send(
          'POST',
          `/sw-1/deploymentBase/${action}/feedback`,
          feedback(action, 'proceeding', 'none', detail),
        );
        expect(r.statusCode).toBe(200);
      }
      expect((await h.store.updates.get(update!.id))?.state).toBe('verifying');
      // Still offered: SWUpdate restarted with -c 2 learns the action from the poll to close it.
      expect((await d.get('/sw-1')).json()._links.deploymentBase.href).toBe(href);
      const closed = await d.send(
        'POST',
        `/sw-1/deploymentBase/${action}/feedback`,
        feedback(action, 'closed', 'success', 'Update Installed.'),
      );
      expect(closed.statusCode).toBe(200);
      expect((await h.store.updates.get(update!.id))?.state).toBe('succeeded');
      expect((await operator('GET', '/devices/sw-1')).json().firmware_version).toBe('1.0.1');
      // A late repeat is answered 200 and changes nothing.
      const again = await d.send(
        'POST',
        `/sw-1/deploymentBase/${action}/feedback`,
        feedback(action, 'closed', 'failure', 'late'),
      );
      expect(again.statusCode).toBe(200);
      expect((await h.store.updates.get(update!.id))?.state).toBe('succeeded');
      expect((await d.get('/sw-1')).json()._links).not.toHaveProperty('deploymentBase');
      expect((await d.get(download)).statusCode).toBe(403);
    });

    it('a failure feedback fails the update with the device’s words', async () => {
      const d = device(await targetDevice('sw-2'));
      await d.get('/sw-2');
      await upload('1.0.1', image);
      await rollout();
      await d.get('/sw-2');
      const [update] = await h.store.updates.list({ deviceId: 'sw-2', limit: 1 });
      const action = actionIdOf(update!.id);
      await d.send(
        'POST',
        `/sw-2/deploymentBase/${action}/feedback`,
        feedback(action, 'closed', 'failure', 'No suitable .swu image found'),
      );
      expect(await h.store.updates.get(update!.id)).toMatchObject({
        state: 'failed',
        error: 'No suitable .swu image found',
      });
    });

    it('a GatewayToken registers the device on its first poll, tagged client=swupdate', async () => {
      const token = (await operator('POST', '/enrollment-tokens', { uses: 5 })).json().token as string;
      const d = device(`GatewayToken ${token}`);
      const first = await d.get('/gw-1');
      expect(first.statusCode, first.body).toBe(200);
      expect((await operator('GET', '/devices/gw-1')).json()).toMatchObject({
        status: 'online',
        tags: { client: 'swupdate' },
      });
      expect((await d.get('/gw-1')).statusCode).toBe(200);
      expect((await d.send('PUT', '/gw-1/configData', '{"data":{"serial":"G-1"}}')).statusCode).toBe(200);
      expect((await operator('GET', '/devices/gw-1')).json().tags).toEqual({
        client: 'swupdate',
        serial: 'G-1',
      });
      const tokens = (await operator('GET', '/enrollment-tokens')).json().tokens;
      expect(tokens[0].uses_left).toBe(4);
      expect((await device('GatewayToken fld_enroll_wrong').get('/gw-2')).statusCode).toBe(401);
    });

    it('refuses a missing or wrong token, and one naming another device', async () => {
      const token = await targetDevice('sw-3');
      expect((await h.app.inject({ method: 'GET', url: `${BASE}/sw-3` })).statusCode).toBe(401);
      expect((await device('TargetToken nope').get('/sw-3')).statusCode).toBe(401);
      const other = await device(token).get('/sw-4');
      expect(other.statusCode).toBe(403);
      expect(other.json().error.code).toBe('FORBIDDEN');
      expect((await device(`${token}x`).send('PUT', '/sw-3/configData', '{}')).statusCode).toBe(401);
      const refused = await h.store.listEvents({ after: 0, limit: 100, typePrefix: 'device.auth_refused' });
      expect(refused.map((e) => e.data.method)).toEqual([
        'ddi:none',
        'ddi:TargetToken',
        'ddi:TargetToken',
        'ddi:TargetToken',
      ]);
      expect(JSON.stringify(refused)).not.toContain(token.slice('TargetToken '.length));
    });

    it('pausing the rollout cancels an action not yet installing; resuming offers it again', async () => {
      const d = device(await targetDevice('sw-5'));
      await d.get('/sw-5');
      await upload('1.0.1', image);
      const id = await rollout();
      const offered = (await d.get('/sw-5')).json()._links;
      expect(offered).toHaveProperty('deploymentBase');
      expect((await operator('POST', `/rollouts/${id}/pause`)).statusCode).toBe(200);
      const [update] = await h.store.updates.list({ deviceId: 'sw-5', limit: 1 });
      const action = actionIdOf(update!.id);
      const paused = (await d.get('/sw-5')).json()._links;
      expect(paused).toEqual({
        cancelAction: { href: `http://localhost:80${BASE}/sw-5/cancelAction/${action}` },
        configData: expect.anything(),
      });
      expect((await d.get(`/sw-5/cancelAction/${action}`)).json()).toEqual({
        id: String(action),
        cancelAction: { stopId: String(action) },
      });
      const ack = await d.send(
        'POST',
        `/sw-5/cancelAction/${action}/feedback`,
        feedback(action, 'closed', 'success', 'cancellation acknowledged.'),
      );
      expect(ack.statusCode).toBe(200);
      await operator('POST', `/rollouts/${id}/resume`);
      expect((await d.get('/sw-5')).json()._links).toHaveProperty('deploymentBase');
    });

    it('cancelling the rollout sends a cancel until the device acknowledges it', async () => {
      const d = device(await targetDevice('sw-6'));
      await d.get('/sw-6');
      await upload('1.0.1', image);
      const id = await rollout();
      await d.get('/sw-6');
      const [update] = await h.store.updates.list({ deviceId: 'sw-6', limit: 1 });
      const action = actionIdOf(update!.id);
      await d.send(
        'POST',
        `/sw-6/deploymentBase/${action}/feedback`,
        feedback(action, 'proceeding', 'none', 'Installing Update Chunk Artifacts.'),
      );
      expect((await operator('POST', `/rollouts/${id}/cancel`)).statusCode).toBe(200);
      expect((await h.store.updates.get(update!.id))?.state).toBe('cancelled');
      expect((await d.get('/sw-6')).json()._links).toHaveProperty('cancelAction');
      expect((await d.get('/sw-6')).json()._links).toHaveProperty('cancelAction');
      await d.send(
        'POST',
        `/sw-6/cancelAction/${action}/feedback`,
        feedback(action, 'closed', 'success', 'cancellation acknowledged.'),
      );
      expect((await d.get('/sw-6')).json()._links).toEqual({ configData: expect.anything() });
      const events = await h.store.listEvents({ after: 0, limit: 100, deviceId: 'sw-6', typePrefix: 'ddi.' });
      expect(events.map((e) => e.type)).toEqual(['ddi.cancel_acknowledged']);
    });

    it('a soft rollout is offered as attempt, never skip', async () => {
      const d = device(await targetDevice('sw-7'));
      await d.get('/sw-7');
      await upload('1.0.1', image);
      await rollout({ action: 'soft' });
      const href = (await d.get('/sw-7')).json()._links.deploymentBase.href as string;
      const deployment = (await d.get(new URL(href).pathname.slice(BASE.length))).json();
      expect(deployment.deployment.update).toBe('attempt');
    });
  });
});

describe('a configured tenant', () => {
  it('serves the DDI API under its own name only', async () => {
    const { openSqliteStore } = await import('../src/store/sqlite/connect.js');
    const dir = tempDir();
    const store = await openSqliteStore(join(dir, 'fleetd.db'));
    const { app } = await createServer({ dataDir: dir, store, logLevel: 'silent', ddiTenant: 'acme' });
    try {
      expect((await app.inject({ method: 'GET', url: '/acme/controller/v1/x' })).statusCode).toBe(401);
      expect((await app.inject({ method: 'GET', url: '/DEFAULT/controller/v1/x' })).statusCode).toBe(404);
    } finally {
      await app.close();
      await store.close();
    }
  });
});
