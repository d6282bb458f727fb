/**
 * Debian's real `swupdate` (suricatta, hawkBit DDI) against a FleetD server on a loopback port: a device with a
 * GatewayToken registers on its first poll, is targeted by a progressive rollout together with a FleetD agent
 * (in-process, speaking FleetD's own API), downloads and installs a real signed .swu (built here with openssl and
 * cpio; its `rawfile` handler writes a file), reports "All Chunks Installed.", and once restarted with `-c 2`
 * closes the action: both updates succeed, both count in the phase gate, and the rollout completes. A second device
 * polling with its TargetToken is sent the cancel of its cancelled rollout and acknowledges it.
 * Skipped where swupdate or cpio is not installed (.ci/run installs them).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { hashSecret, newSecret } from '../src/registry/credentials.js';
import { createServer } from '../src/server/serve.js';
import { LiveAgents } from '../src/sim/live-agents.js';
import { openSqliteStore } from '../src/store/sqlite/connect.js';
import type { Store } from '../src/store/store.js';
import { eventually } from './support/eventually.js';
import { tempDir } from './support/processes.js';

const tools = ['swupdate', 'cpio', 'openssl'].filter(
  (tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0,
);
const run = tools.length === 0 ? describe : describe.skip;

/** The signed .swu of hawkbit-ddi.md §9: one file written by the rawfile handler into `installed`. */
function buildSwu(work: string): { swu: string; cert: string; installed: string } {
  const art = join(work, 'art');
  const installed = join(work, 'installed', 'payload.txt');
  mkdirSync(join(art, 'build'), { recursive: true });
  const script = `
set -e
cd "${art}/build"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ../signing-key.pem -out ../signing-cert.pem -subj /CN=fleetd-test-signer -days 3650 2>/dev/null
printf 'hello from FleetD 1.0.1\\n' > payload.txt
SHA=$(sha256sum payload.txt | cut -d' ' -f1)
cat > sw-description <<EOF
software =
{
	version = "1.0.1";
	description = "FleetD interop test";
	hardware-compatibility: [ "1.0" ];
	files: (
		{
			filename = "payload.txt";
			path = "${installed}";
			sha256 = "$SHA";
			properties = { create-destination = "true"; };
		}
	);
};
EOF
openssl cms -sign -in sw-description -out sw-description.sig -signer ../signing-cert.pem -inkey ../signing-key.pem -outform DER -nosmimecap -binary
printf 'sw-description\\nsw-description.sig\\npayload.txt\\n' | cpio -o -H newc --quiet > ../update-1.0.1.swu
`;
  const built = spawnSync('sh', ['-c', script], { encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`building the .swu failed: ${built.stderr}`);
  return { swu: join(art, 'update-1.0.1.swu'), cert: join(art, 'signing-cert.pem'), installed };
}

interface Swupdate {
  child: ChildProcess;
  log(): string;
  stop(): Promise<void>;
}

/** One swupdate instance polling the server, with its own TMPDIR (its IPC sockets) and config file. */
function startSwupdate(work: string, name: string, suricatta: string, extra = ''): Swupdate {
  const state = join(work, `state-${name}`);
  mkdirSync(state, { recursive: true });
  const config = join(work, `${name}.cfg`);
  writeFileSync(
    config,
    `globals : { verbose = true; loglevel = 6; public-key-file = "${join(work, 'art', 'signing-cert.pem')}"; };
identify : ( { name = "board"; value = "fleetd-board"; }, { name = "serial"; value = "SN-${name}"; } );
suricatta : { ${suricatta} polldelay = 1; retry = 2; retrywait = 1; };
`,
  );
  const child = spawn('swupdate', ['-f', config, '-H', 'fleetd-board:1.0', '-u', extra], {
    env: { ...process.env, TMPDIR: `${state}/` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
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
  `real swupdate against FleetD${tools.length ? ` (skipped: ${tools.join(', ')} not installed)` : ''}`,
  () => {
    let work: string;
    let store: Store;
    let app: FastifyInstance;
    let tick: () => Promise<void>;
    let url: string;
    let built: ReturnType<typeof buildSwu>;
    const admin = { authorization: '' };
    const running: Swupdate[] = [];

    const operator = (method: 'GET' | 'POST', path: string, payload?: object) =>
      app.inject({ method, url: `/api/v1${path}`, headers: admin, ...(payload ? { payload } : {}) });

    beforeAll(async () => {
      work = tempDir('fleetd-swupdate-');
      built = buildSwu(work);
      const clock = new ManualClock(Date.parse('2026-12-06T12:00:00Z'));
      store = await openSqliteStore(join(work, 'fleetd.db'));
      const token = newSecret('admin');
      await store.createApiToken(
        { id: 'tok_admin', name: 'admin', role: 'admin', createdAt: clock.now() },
        hashSecret(token),
      );
      admin.authorization = `Bearer ${token}`;
      const parts = await createServer({
        dataDir: join(work, 'data'),
        store,
        clock,
        // The polling interval SWUpdate is told (config.polling.sleep 00:00:01).
        heartbeatIntervalSec: 1,
        logLevel: 'silent',
      });
      app = parts.app;
      tick = () => parts.engine.tick();
      await app.listen({ host: '127.0.0.1', port: 0 });
      url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
      const uploaded = await app.inject({
        method: 'POST',
        url: '/api/v1/artifacts?name=image&version=1.0.1&type=swu&hardware=fleetd-board',
        headers: { ...admin, 'content-type': 'application/octet-stream' },
        payload: readFileSync(built.swu),
      });
      expect(uploaded.statusCode, uploaded.body).toBe(201);
    }, 60_000);

    afterAll(async () => {
      await Promise.all(running.map((s) => s.stop()));
      await app?.close();
      await store?.close();
    });

    it('registers with a GatewayToken, is updated by a progressive rollout together with a FleetD agent, and closes its action after a -c 2 restart', async () => {
      const enrollment = (await operator('POST', '/enrollment-tokens', { uses: 1 })).json().token as string;
      const suricatta = `tenant = "DEFAULT"; id = "sw-1"; url = "${url}"; gatewaytoken = "${enrollment}";`;
      const first = startSwupdate(work, 'sw-1', suricatta);
      running.push(first);
      const device = await eventually(
        'sw-1 to register and send its configData',
        async () => {
          const d = await operator('GET', '/devices/sw-1');
          return d.statusCode === 200 && d.json().tags.serial === 'SN-sw-1' && d.json();
        },
        { timeoutMs: 20_000 },
      );
      expect(device).toMatchObject({ status: 'online', tags: { client: 'swupdate', board: 'fleetd-board' } });

      // A FleetD agent of the same hardware beside it, in the same progressive rollout and the same gates.
      const stopAgents = new AbortController();
      const agents = new LiveAgents({
        count: 1,
        server: url,
        enrollToken: (await operator('POST', '/enrollment-tokens', { uses: 1 })).json().token as string,
        publicKey: (await operator('GET', '/keys')).json().keys[0].public_key as string,
        idPrefix: 'agent-',
        hardwareType: 'fleetd-board',
        heartbeatIntervalSec: 1,
        rampMs: 0,
      });
      const agentsDone = agents.run(stopAgents.signal);
      try {
        await eventually(
          'the agent to enroll',
          async () => (await operator('GET', '/devices/agent-0')).statusCode === 200,
          { timeoutMs: 20_000 },
        );
        const created = await operator('POST', '/rollouts', {
          name: 'swupdate device and agent to 1.0.1',
          release: 'image@1.0.1',
          filter: 'id = sw-1 or id = agent-0',
          strategy: 'progressive',
          phases: [
            { name: 'first', percentage: 50, success_rate: 100 },
            { name: 'rest', percentage: 100, success_rate: 100 },
          ],
        });
        expect(created.statusCode, created.body).toBe(201);
        const rolloutId = created.json().id as string;

        // Whichever phase it is in, the device installs when its turn comes.
        const update = await eventually(
          'the install to end in "All Chunks Installed." (verifying)',
          async () => {
            await tick();
            const [u] = await store.updates.list({ deviceId: 'sw-1', limit: 1 });
            return u?.state === 'verifying' && u;
          },
          { timeoutMs: 45_000 },
        ).catch((error: unknown) => {
          throw new Error(`${String(error)}\nswupdate log:\n${first.log().slice(-3000)}`);
        });
        expect(readFileSync(built.installed, 'utf8')).toBe('hello from FleetD 1.0.1\n');

        // SWUpdate closes an installed action only when restarted with the test result (-c 2: success).
        await first.stop();
        const confirm = startSwupdate(work, 'sw-1', suricatta, '-c 2');
        running.push(confirm);
        await eventually(
          'the update to succeed',
          async () => (await store.updates.get(update.id))?.state === 'succeeded',
          { timeoutMs: 20_000 },
        ).catch((error: unknown) => {
          throw new Error(`${String(error)}\nswupdate log:\n${confirm.log().slice(-3000)}`);
        });
        const rollout = await eventually(
          'both devices to succeed and the rollout to complete',
          async () => {
            await tick();
            const r = (await operator('GET', `/rollouts/${rolloutId}`)).json();
            return r.state === 'completed' && r;
          },
          { timeoutMs: 45_000 },
        );
        expect(rollout.totals.counts).toEqual({ succeeded: 2 });
        expect(rollout.phases[0].gate).toMatchObject({ decision: 'pass', success_rate: 100 });
        await confirm.stop();
      } finally {
        stopAgents.abort();
        await agentsDone;
      }
      expect((await operator('GET', '/devices/sw-1')).json().firmware_version).toBe('1.0.1');
    }, 90_000);

    it('sends the cancel of a cancelled rollout to a polling device, which acknowledges it', async () => {
      await operator('POST', '/devices/import', { devices: [{ id: 'sw-2', hardware_type: 'fleetd-board' }] });
      const credential = (await operator('POST', '/devices/sw-2/credential')).json().credential as string;
      const suricatta = `tenant = "DEFAULT"; id = "sw-2"; url = "${url}"; targettoken = "${credential}";`;
      const polling = startSwupdate(work, 'sw-2', suricatta);
      running.push(polling);
      await eventually(
        'sw-2 to poll and send its configData',
        async () => (await operator('GET', '/devices/sw-2')).json().tags.serial === 'SN-sw-2',
        { timeoutMs: 20_000 },
      );
      const created = await operator('POST', '/rollouts', {
        name: 'to be cancelled',
        release: 'image@1.0.1',
        filter: 'id = sw-2',
        strategy: 'immediate',
      });
      expect(created.statusCode, created.body).toBe(201);
      const cancelled = await operator('POST', `/rollouts/${created.json().id}/cancel`);
      expect(cancelled.statusCode, cancelled.body).toBe(200);
      const [update] = await store.updates.list({ deviceId: 'sw-2', limit: 1 });
      expect(update?.state).toBe('cancelled');
      const ack = await eventually(
        'sw-2 to acknowledge the cancel',
        async () =>
          (await store.listEvents({ after: 0, limit: 10, deviceId: 'sw-2', typePrefix: 'ddi.cancel' }))[0],
        { timeoutMs: 20_000 },
      ).catch((error: unknown) => {
        throw new Error(`${String(error)}\nswupdate log:\n${polling.log().slice(-3000)}`);
      });
      expect(ack).toMatchObject({ reason: 'cancellation acknowledged.', data: { update_id: update!.id } });
      expect(existsSync(built.installed)).toBe(true); // from the first test; nothing else was installed
      await polling.stop();
    }, 60_000);
  },
);
