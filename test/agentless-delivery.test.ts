/**
 * Agentless delivery on every store backend, against the real thing: an OpenSSH server started by the test on a
 * loopback port (its own config, host key and authorized_keys) and a loopback HTTP endpoint. A rollout's update
 * reaches the device through the same offer and reports as an agent's; a host key other than the pinned one
 * stops the delivery before anything is sent.
 */

import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { type TestApp, testApp } from './support/app.js';
import { startSshd } from './support/sshd.js';
import { forEachBackend } from './support/stores.js';

const IMAGE = randomBytes(256 * 1024);
const thresholds = { offlineAfterMs: 600_000, abandonedAfterMs: 30 * 86_400_000 };

/** A device's own HTTP endpoint on loopback: keeps what it was sent and answers `status`. */
async function startEndpoint(status: number) {
  const received: Array<{ headers: IncomingHttpHeaders; body: Buffer }> = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => {
      received.push({ headers: request.headers, body: Buffer.concat(chunks) });
      response.writeHead(status).end(status === 200 ? 'installed' : 'disk full');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/fleetd/update`;
  return { url, received, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

forEachBackend((backend) => {
  describe('agentless delivery', () => {
    let t: TestApp;
    beforeEach(async () => {
      t = await testApp(undefined, { store: await backend.open() });
      return () => t.close();
    });

    const api = (method: 'GET' | 'PUT' | 'DELETE' | 'POST', url: string, payload?: Record<string, unknown>) =>
      t.app.inject({ method, url, headers: t.admin, ...(payload === undefined ? {} : { payload }) });

    /** Devices on 1.0.0, release 2.0.0 uploaded, an immediate rollout to all of them started. */
    const rollOut = async (ids: string[]) => {
      await t.store.importDevices(
        ids.map((id) => ({ id, hardwareType: 'gw', firmwareVersion: '1.0.0' })),
        { now: t.clock.now(), thresholds },
        'test',
      );
      const up = await t.app.inject({
        method: 'POST',
        url: '/api/v1/artifacts?name=gw-app&version=2.0.0&hardware=gw',
        headers: { ...t.admin, 'content-type': 'application/octet-stream' },
        payload: IMAGE,
      });
      expect(up.statusCode, up.body).toBe(201);
      const r = await api('POST', '/api/v1/rollouts', {
        name: 'gateways',
        release: 'gw-app@2.0.0',
        filter: 'hardware=gw',
        strategy: 'immediate',
      });
      expect(r.statusCode, r.body).toBe(201);
      await t.engine.tick();
    };
    const deliverAll = async () => {
      await t.delivery.pass();
      await t.delivery.idle();
    };
    const updateOf = async (deviceId: string) => (await t.store.updates.list({ deviceId, limit: 5 }))[0]!;

    it('installs over SFTP on a real sshd with a pinned host key, runs the health check and reports it', async () => {
      const key = await api('GET', '/api/v1/delivery/ssh-key');
      expect(key.statusCode).toBe(200);
      const publicKey = key.json().public_key as string;
      expect(publicKey).toMatch(/^ssh-ed25519 AAAA/);
      const sshd = await startSshd(publicKey);
      try {
        await rollOut(['gw-1']);
        const set = await api('PUT', '/api/v1/devices/gw-1/delivery', {
          method: 'ssh',
          host: '127.0.0.1',
          port: sshd.port,
          user: sshd.user,
          host_key: sshd.hostKey,
          upload_dir: sshd.dir,
          install_command: `cp "$FLEETD_ARTIFACT" ${sshd.dir}/installed-$FLEETD_VERSION`,
          health_command: `test -s ${sshd.dir}/installed-$FLEETD_VERSION`,
        });
        expect(set.statusCode, set.body).toBe(200);
        await deliverAll();

        const update = await updateOf('gw-1');
        expect(update).toMatchObject({ state: 'succeeded', error: null });
        expect(readFileSync(join(sshd.dir, 'installed-2.0.0')).equals(IMAGE)).toBe(true);
        expect((await t.store.getDevice('gw-1', { now: t.clock.now(), thresholds }))?.firmwareVersion).toBe(
          '2.0.0',
        );
        // Reported step by step, as an agent reports.
        const events = await t.store.listEvents({ deviceId: 'gw-1', limit: 100 });
        const states = events.filter((e) => e.type.startsWith('update.')).map((e) => e.type);
        expect(states).toEqual(
          expect.arrayContaining([
            'update.downloading',
            'update.installing',
            'update.verifying',
            'update.succeeded',
          ]),
        );
        // The private key is on disk encrypted only; nothing of it in the events.
        const privateKey = readFileSync(join(t.dataDir, 'delivery', 'ssh_key'), 'utf8');
        expect(privateKey).toContain('BEGIN OPENSSH PRIVATE KEY');
        const { utils } = await import('ssh2');
        expect(utils.parseKey(privateKey)).toBeInstanceOf(Error); // no passphrase: it does not open
        expect(JSON.stringify(events)).not.toContain(privateKey.split('\n')[1]!);
      } finally {
        await sshd.stop();
      }
    });

    it('refuses a host whose key is not the pinned one: nothing uploaded, nothing run, the update fails', async () => {
      const publicKey = (await api('GET', '/api/v1/delivery/ssh-key')).json().public_key as string;
      const sshd = await startSshd(publicKey);
      const impostor = await startSshd(publicKey);
      try {
        await rollOut(['gw-2']);
        const set = await api('PUT', '/api/v1/devices/gw-2/delivery', {
          method: 'ssh',
          host: '127.0.0.1',
          port: impostor.port,
          user: impostor.user,
          host_key: sshd.hostKey, // pinned: the real device's key
          upload_dir: impostor.dir,
          install_command: `touch ${impostor.dir}/ran`,
        });
        expect(set.statusCode, set.body).toBe(200);
        await deliverAll();
        const update = await updateOf('gw-2');
        expect(update.state).toBe('failed');
        expect(update.error).toMatch(/host key .* is not the one pinned/);
        expect(existsSync(join(impostor.dir, 'ran'))).toBe(false);
        expect(existsSync(join(impostor.dir, 'fleetd-gw-app-2.0.0'))).toBe(false);
      } finally {
        await sshd.stop();
        await impostor.stop();
      }
    });

    it('POSTs the artifact to the device’s endpoint; a 2xx is an install, anything else a failure', async () => {
      const good = await startEndpoint(200);
      const full = await startEndpoint(507);
      try {
        await rollOut(['kiosk-1', 'kiosk-2']);
        expect(
          (await api('PUT', '/api/v1/devices/kiosk-1/delivery', { method: 'http_push', url: good.url }))
            .statusCode,
        ).toBe(200);
        expect(
          (await api('PUT', '/api/v1/devices/kiosk-2/delivery', { method: 'http_push', url: full.url }))
            .statusCode,
        ).toBe(200);
        await deliverAll();

        expect(good.received).toHaveLength(1);
        expect(good.received[0]!.body.equals(IMAGE)).toBe(true);
        expect(good.received[0]!.headers).toMatchObject({
          'x-fleetd-release': 'gw-app',
          'x-fleetd-version': '2.0.0',
        });
        expect(await updateOf('kiosk-1')).toMatchObject({ state: 'succeeded' });
        const failed = await updateOf('kiosk-2');
        expect(failed.state).toBe('failed');
        expect(failed.error).toBe('the device answered 507: disk full');
      } finally {
        await good.close();
        await full.close();
      }
    });

    it('checks the settings whole before storing them, with the error shape', async () => {
      await t.store.importDevices(
        [{ id: 'gw-9', hardwareType: 'gw' }],
        { now: t.clock.now(), thresholds },
        'test',
      );
      const bad = await api('PUT', '/api/v1/devices/gw-9/delivery', {
        method: 'ssh',
        host: '127.0.0.1',
        user: 'root',
        host_key: 'trust me',
        install_command: 'true',
      });
      expect(bad.statusCode).toBe(400);
      expect(bad.json()).toMatchObject({
        error: { code: 'VALIDATION', message: expect.stringContaining('host_key') },
      });
      const secretUrl = await api('PUT', '/api/v1/devices/gw-9/delivery', {
        method: 'http_push',
        url: 'http://user:pw@10.0.0.9/update',
      });
      expect(secretUrl.statusCode).toBe(400);
      expect((await api('GET', '/api/v1/devices/gw-9/delivery')).statusCode).toBe(404);
      const unknown = await api('PUT', '/api/v1/devices/nobody/delivery', {
        method: 'http_push',
        url: 'http://10.0.0.9/',
      });
      expect(unknown.statusCode).toBe(404);
      expect(unknown.json()).toMatchObject({ error: { code: 'DEVICE_NOT_FOUND' } });
      expect((await api('DELETE', '/api/v1/devices/gw-9/delivery')).statusCode).toBe(404);
    });
  });
});
