/**
 * Debian's real `mender-client` 3.4 daemon against a FleetD server on a loopback port. It authenticates with a
 * signed auth request (its tenant token is a FleetD enrollment token), appears in the registry as `client=mender`,
 * and is targeted by a progressive rollout together with a FleetD agent (in-process, speaking FleetD's own API):
 * it downloads the Mender artifact (built with Debian's `mender-artifact`), its single-file update module writes
 * the file, and both successes count in the phase gate. A second device gets an artifact for another device
 * type: it reports the failure and uploads its log, which is kept with the update.
 * The client hardcodes its identity script and /etc/mender: it runs in a private mount namespace (`unshare -m`,
 * root). Skipped where mender, mender-artifact or unshare cannot run (.ci/run installs them).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { hashSecret, newSecret } from '../src/registry/credentials.js';
import { createServer, type ServerParts } from '../src/server/serve.js';
import { LiveAgents } from '../src/sim/live-agents.js';
import { openSqliteStore } from '../src/store/sqlite/connect.js';
import { eventually } from './support/eventually.js';
import { buildMenderArtifact, hasMenderArtifact } from './support/mender-artifact.js';
import { tempDir } from './support/processes.js';

const canRun =
  hasMenderArtifact() &&
  spawnSync('sh', ['-c', 'command -v mender']).status === 0 &&
  spawnSync('unshare', ['-m', 'true']).status === 0;
const run = canRun ? describe : describe.skip;

interface Mender {
  child: ChildProcess;
  log(): string;
  stop(): Promise<void>;
}

/** One mender daemon with its own data dir (key, database) and serial, polling every second. */
function startMender(work: string, name: string, url: string, tenantToken: string): Mender {
  const dir = join(work, name);
  const data = join(dir, 'data');
  for (const d of ['etc-mender', 'identity', 'data']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'etc-mender', 'artifact_info'), 'artifact_name=app-v0\n');
  const identity = join(dir, 'identity', 'mender-device-identity');
  writeFileSync(identity, `#!/bin/sh\necho "serial=SN-${name}"\necho "mac=02:00:00:00:00:01"\n`, {
    mode: 0o755,
  });
  writeFileSync(join(data, 'device_type'), 'device_type=fleetd-dev\n');
  const config = join(dir, 'mender.conf');
  writeFileSync(
    config,
    JSON.stringify({
      ServerURL: url,
      TenantToken: tenantToken,
      UpdatePollIntervalSeconds: 1,
      InventoryPollIntervalSeconds: 1,
      RetryPollIntervalSeconds: 1,
      DBus: { Enabled: false },
    }),
  );
  const script =
    `mount --bind ${join(dir, 'etc-mender')} /etc/mender && ` +
    `mount --bind ${join(dir, 'identity')} /usr/share/mender/identity && ` +
    `exec mender --config ${config} --fallback-config ${join(dir, 'none.conf')} --data ${data} ` +
    '--no-syslog --log-level debug daemon';
  const child = spawn('unshare', ['-m', 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-200_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return {
    child,
    log: () => output,
    stop: () =>
      new Promise((done) => {
        if (child.exitCode !== null || child.signalCode !== null) return done();
        child.once('exit', () => done());
        child.kill('SIGTERM');
      }),
  };
}

run(
  `real mender-client against FleetD${canRun ? '' : ' (skipped: mender, mender-artifact or unshare missing)'}`,
  () => {
    let work: string;
    let parts: ServerParts;
    let url: string;
    const admin = { authorization: '' };
    const running: Mender[] = [];

    const operator = (method: 'GET' | 'POST', path: string, payload?: object) =>
      parts.app.inject({ method, url: `/api/v1${path}`, headers: admin, ...(payload ? { payload } : {}) });
    const upload = (query: string, file: string) =>
      parts.app.inject({
        method: 'POST',
        url: `/api/v1/artifacts?${query}`,
        headers: { ...admin, 'content-type': 'application/octet-stream' },
        payload: readFileSync(file),
      });
    const menderDevice = (serial: string) =>
      eventually(
        `the mender device ${serial} to enroll, send its inventory and check for updates`,
        async () => {
          const page = (
            await operator('GET', `/devices?filter=${encodeURIComponent(`tag.serial = ${serial}`)}`)
          ).json();
          const device = page.devices?.[0];
          // The inventory and the first update check race; only the update check counts as contact.
          return device?.hardware_type === 'fleetd-dev' && device.status === 'online' && device;
        },
        { timeoutMs: 20_000 },
      );
    const withLog = (mender: Mender) => (error: unknown) => {
      throw new Error(`${String(error)}\nmender log:\n${mender.log().slice(-4000)}`);
    };

    beforeAll(async () => {
      work = tempDir('fleetd-mender-');
      const clock = new ManualClock(Date.parse('2026-12-06T12:00:00Z'));
      const store = await openSqliteStore(join(work, 'fleetd.db'));
      const token = newSecret('admin');
      await store.createApiToken(
        { id: 'tok_admin', name: 'admin', role: 'admin', createdAt: clock.now() },
        hashSecret(token),
      );
      admin.authorization = `Bearer ${token}`;
      parts = await createServer({
        dataDir: join(work, 'data'),
        store,
        clock,
        heartbeatIntervalSec: 1,
        logLevel: 'silent',
      });
      await parts.app.listen({ host: '127.0.0.1', port: 0 });
      url = `http://127.0.0.1:${(parts.app.server.address() as AddressInfo).port}`;
    }, 60_000);

    afterAll(async () => {
      await Promise.all(running.map((m) => m.stop()));
      await parts?.app.close();
      await parts?.store.close();
    });

    it('enrolls, is updated by a progressive rollout together with a FleetD agent, and counts in the gate', async () => {
      const artifact = buildMenderArtifact(work, {
        name: 'app-v1',
        deviceTypes: ['fleetd-dev'],
        destDir: join(work, 'installed'),
        text: 'hello from FleetD mender v1',
      });
      const uploaded = await upload('name=app&version=1.0.1&type=mender&hardware=fleetd-dev', artifact);
      expect(uploaded.statusCode, uploaded.body).toBe(201);
      const enrollment = (await operator('POST', '/enrollment-tokens', { uses: 2 })).json().token as string;

      const mender = startMender(work, 'md-1', url, enrollment);
      running.push(mender);
      const device = await menderDevice('SN-md-1').catch(withLog(mender));
      expect(device).toMatchObject({
        status: 'online',
        tags: { client: 'mender', mac: '02:00:00:00:00:01' },
      });

      // A FleetD agent of the same hardware beside it: it installs the same release as a file.
      const stopAgents = new AbortController();
      const publicKey = (await operator('GET', '/keys')).json().keys[0].public_key as string;
      const agents = new LiveAgents({
        count: 1,
        server: url,
        enrollToken: enrollment,
        publicKey,
        idPrefix: 'agent-',
        hardwareType: 'fleetd-dev',
        heartbeatIntervalSec: 1,
        rampMs: 0,
      });
      const agentsDone = agents.run(stopAgents.signal);
      try {
        await eventually(
          'the agent to enroll',
          async () => (await operator('GET', '/devices/agent-0')).statusCode === 200,
          {
            timeoutMs: 20_000,
          },
        );
        const created = await operator('POST', '/rollouts', {
          name: 'mender and agent to 1.0.1',
          release: 'app@1.0.1',
          filter: `id = ${device.id} or id = agent-0`,
          strategy: 'progressive',
          phases: [
            { name: 'first', percentage: 50, success_rate: 100 },
            { name: 'rest', percentage: 100, success_rate: 100 },
          ],
        });
        expect(created.statusCode, created.body).toBe(201);
        const rolloutId = created.json().id as string;
        const rollout = await eventually(
          'both devices to succeed and the rollout to complete',
          async () => {
            await parts.engine.tick();
            const r = (await operator('GET', `/rollouts/${rolloutId}`)).json();
            return r.state === 'completed' && r;
          },
          { timeoutMs: 45_000 },
        ).catch(withLog(mender));
        expect(rollout.totals.counts).toEqual({ succeeded: 2 });
        expect(rollout.phases[0].gate).toMatchObject({ decision: 'pass', success_rate: 100 });
      } finally {
        stopAgents.abort();
        await agentsDone;
      }
      expect(readFileSync(join(work, 'installed', 'hello.txt'), 'utf8')).toMatch(
        /^hello from FleetD mender v1\n/,
      );
      const [update] = await parts.store.updates.list({ deviceId: device.id, limit: 1 });
      expect(update?.state).toBe('succeeded');
      await eventually(
        'the inventory to show the installed artifact',
        async () => (await operator('GET', `/devices/${device.id}`)).json().tags.artifact_name === 'app-v1',
        { timeoutMs: 10_000 },
      );
      await mender.stop();
    }, 120_000);

    it('reports the failure of a corrupted artifact and uploads its log, kept with the update', async () => {
      const artifact = buildMenderArtifact(work, {
        name: 'app-v2',
        deviceTypes: ['fleetd-dev'],
        destDir: join(work, 'installed-2'),
        text: 'never installed',
      });
      const uploaded = await upload('name=app&version=2.0.0&type=mender&hardware=fleetd-dev', artifact);
      expect(uploaded.statusCode, uploaded.body).toBe(201);
      // Corrupted in storage after its checked upload: one byte of its payload flipped.
      const sha256 = uploaded.json().sha256 as string;
      const blob = join(work, 'data', 'blobs', 'sha256', sha256.slice(0, 2), sha256);
      const bytes = readFileSync(blob);
      const payload = bytes.indexOf('data/0000.tar.gz') + 512 + 64;
      bytes[payload] = (bytes[payload] ?? 0) ^ 0xff;
      writeFileSync(blob, bytes);

      const enrollment = (await operator('POST', '/enrollment-tokens', { uses: 1 })).json().token as string;
      const mender = startMender(work, 'md-2', url, enrollment);
      running.push(mender);
      const device = await menderDevice('SN-md-2').catch(withLog(mender));
      const assigned = await operator('POST', '/updates/assign', {
        devices: [device.id],
        release: 'app@2.0.0',
      });
      expect(assigned.statusCode, assigned.body).toBe(200);
      expect(assigned.json().assigned).toHaveLength(1);
      const failed = await eventually(
        'the update to fail',
        async () => {
          const [u] = await parts.store.updates.list({ deviceId: device.id, limit: 1 });
          return u?.state === 'failed' && u;
        },
        { timeoutMs: 30_000 },
      ).catch(withLog(mender));
      const log = await eventually(
        'the device log to be kept with the update',
        async () =>
          (
            await parts.store.listEvents({
              after: 0,
              limit: 10,
              deviceId: device.id,
              typePrefix: 'update.device_log',
            })
          )[0],
        { timeoutMs: 20_000 },
      ).catch(withLog(mender));
      expect(log.data.update_id).toBe(failed.id);
      expect((log.data.lines as string[]).length).toBeGreaterThan(3);
      expect(readFileSync(join(work, 'installed', 'hello.txt'), 'utf8')).toMatch(
        /^hello from FleetD mender v1\n/,
      );
      await mender.stop();
    }, 90_000);
  },
);
