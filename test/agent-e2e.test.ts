/**
 * The device agent end to end: a real server process and real `fleetd agent` processes over HTTP.
 * Server heartbeat interval 1 s so the flows run in seconds.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../src/artifacts/signing.js';
import { type Agent, type AgentOptions, activeVersion, startAgent } from './support/agents.js';
import { countingProxy } from './support/counting-proxy.js';
import { eventually } from './support/eventually.js';
import { type Operator, operator, pinnedKeyFile } from './support/fleet.js';
import { freePort, type ServerProcess, spawnServer, tempDir } from './support/processes.js';

let server: ServerProcess;
let data: string;
let op: Operator;
let port: number;
let publicKeyFile: string;
let enrollToken: string;
const agents: Agent[] = [];

beforeAll(async () => {
  data = tempDir();
  port = await freePort();
  server = await spawnServer(data, [
    '--port',
    String(port),
    '--heartbeat-interval',
    '1s',
    '--log-level',
    'warn',
  ]);
  op = operator(server.url, data);
  publicKeyFile = await pinnedKeyFile(op);
  // e2e-hw is imported first, then enrolled by its agent: the token may claim it.
  enrollToken = (
    await op.call<{ token: string }>('POST', '/api/v1/enrollment-tokens', { claim: 'id = e2e-hw' })
  ).body.token;
});

afterAll(async () => {
  await Promise.all(agents.map((a) => a.kill('SIGKILL')));
  await server.kill();
});

/** A device running 2.1.0, enrolled with the token that may claim e2e-hw; online once this resolves. */
async function device(id: string, options: AgentOptions = {}): Promise<Agent> {
  const agent = await startAgent(op, id, { publicKeyFile, enrollToken, firmware: '2.1.0', ...options });
  agents.push(agent);
  return agent;
}

/** The reports an agent keeps until the server has answered for them (src/agent/outbox.ts). */
function outboxReports(stateDir: string): Array<{ update_id: string; state: string }> {
  const file = join(stateDir, 'outbox.json');
  return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')).reports : [];
}

async function assign(release: string, device: string): Promise<string> {
  const r = await op.call<{ assigned: Array<{ id: string }>; skipped: unknown[] }>(
    'POST',
    '/api/v1/updates/assign',
    {
      release,
      devices: [device],
    },
  );
  expect(r.body.skipped).toEqual([]);
  return r.body.assigned[0]!.id;
}

/** Each transition of a successful update, recorded once, in order. */
const SUCCESS_EVENTS = [
  'update.pending',
  'update.notified',
  'update.downloading',
  'update.installing',
  'update.verifying',
  'update.succeeded',
];

/** The version in the active slot; the firmware the device started with while no release was installed. */
const running = (stateDir: string) => activeVersion(stateDir) ?? '2.1.0';

async function updateEvents(device: string) {
  const r = await op.call<{ events: Array<{ type: string; reason: string }> }>(
    'GET',
    `/api/v1/events?device=${device}&type=update.&limit=1000`,
  );
  return r.body.events;
}

describe('downloads', () => {
  it('resume with `curl -C -`', async () => {
    const content = randomBytes(300_000);
    const release = await op.upload('name=curl-resume&version=1.0.0&hardware=pos-x200', content);
    const file = join(tempDir(), 'artifact');
    writeFileSync(file, content.subarray(0, 123_456));
    execFileSync('curl', [
      '-sSf',
      '-C',
      '-',
      '-o',
      file,
      '-H',
      `Authorization: Bearer ${op.token}`,
      `${server.url}/api/v1/artifacts/${release.id}/download`,
    ]);
    expect(readFileSync(file).equals(content)).toBe(true);
  });
});

describe('fleetd agent', () => {
  it('installs a good release into the inactive slot and reports succeeded', async () => {
    await op.upload('name=pos-fw&version=2.3.0&hardware=pos-x200', randomBytes(256 * 1024));
    const agent = await device('e2e-good');
    const update = await assign('pos-fw@2.3.0', 'e2e-good');
    const done = await op.waitForUpdate(update, ['succeeded', 'failed', 'rolled_back']);
    expect(done.state).toBe('succeeded');
    expect(running(agent.stateDir)).toBe('2.3.0');
    expect((await updateEvents('e2e-good')).map((e) => e.type)).toEqual(SUCCESS_EVENTS);
    // The next heartbeat reports the new firmware.
    await eventually(
      'the device to report firmware 2.3.0',
      async () =>
        (await op.call<{ firmware_version: string }>('GET', '/api/v1/devices/e2e-good')).body
          .firmware_version === '2.3.0',
    );
  });

  it('refuses a tampered artifact, a bad signature, a wrong hardware type and a downgrade, staying on its version', async () => {
    // Tampered: the blob on the server's disk no longer matches the signed sha256.
    const tampered = await op.upload('name=tampered&version=2.4.0&hardware=pos-x200', randomBytes(64 * 1024));
    const blob = join(data, 'blobs', 'sha256', tampered.sha256!.slice(0, 2), tampered.sha256!);
    writeFileSync(blob, randomBytes(64 * 1024));
    // Wrong hardware: the registry believes pos-x200, the device really is pos-x100.
    await op.call('POST', '/api/v1/devices/import', {
      devices: [{ id: 'e2e-hw', hardware_type: 'pos-x200' }],
    });
    await op.upload('name=downgrade&version=2.0.0&hardware=pos-x200', randomBytes(1024));

    const badKeyFile = join(tempDir(), 'other.pub');
    writeFileSync(badKeyFile, generateKeyPair().publicKeyPem);

    const cases: Array<{ id: string; release: string; options: AgentOptions; reason: RegExp }> = [
      { id: 'e2e-tampered', release: 'tampered@2.4.0', options: {}, reason: /sha256 mismatch/ },
      {
        id: 'e2e-badsig',
        release: 'pos-fw@2.3.0',
        options: { publicKeyFile: badKeyFile },
        reason: /signature mismatch/,
      },
      {
        id: 'e2e-hw',
        release: 'pos-fw@2.3.0',
        options: { hardware: 'pos-x100' },
        reason: /hardware pos-x100 not in/,
      },
      {
        id: 'e2e-downgrade',
        release: 'downgrade@2.0.0',
        options: {},
        reason: /downgrade 2\.1\.0 → 2\.0\.0 refused|downgrade/,
      },
    ];
    const started = [];
    for (const c of cases) started.push({ ...c, agent: await device(c.id, c.options) });
    for (const c of started) {
      const update = await assign(c.release, c.id);
      const done = await op.waitForUpdate(update, ['succeeded', 'failed', 'rolled_back']);
      expect(done.state, c.id).toBe('failed');
      expect(done.error, c.id).toMatch(c.reason);
      // Nothing was switched to: the device still runs what it ran.
      expect(running(c.agent.stateDir), c.id).toBe('2.1.0');
    }
    // Four agent processes, one after another: on a loaded CI machine that outlasts the default 30 s.
  }, 120_000);

  it('rolls back automatically when the health check fails, and reports rolled_back', async () => {
    await op.upload('name=unhealthy&version=2.5.0&hardware=pos-x200', randomBytes(4096));
    const agent = await device('e2e-unhealthy', {
      flags: ['--health-cmd', 'exit 3', '--health-deadline', '2s'],
    });
    const update = await assign('unhealthy@2.5.0', 'e2e-unhealthy');
    const done = await op.waitForUpdate(update, ['succeeded', 'failed', 'rolled_back']);
    expect(done.state).toBe('rolled_back');
    expect(done.error).toMatch(/health check failed/);
    // The report goes out first (it is kept until sent, whatever happens next); the switch back follows.
    await eventually('the previous slot active again', () => running(agent.stateDir) === '2.1.0', {
      timeoutMs: 20_000,
    });
  });

  it('resumes a download after the agent is killed, without fetching the finished bytes again', async () => {
    const size = 48 * 1024 * 1024;
    const release = await op.upload('name=big&version=3.0.0&hardware=pos-x200', randomBytes(size));
    const proxy = await countingProxy(new URL(server.url), 12 * 1024 * 1024);
    try {
      const stateDir = tempDir('fleetd-agent-');
      const agent = await device('e2e-resume', { stateDir, serverUrl: proxy.url });
      const update = await assign('big@3.0.0', 'e2e-resume');
      await eventually('40 % of the artifact to be downloaded', () => proxy.bytesFromServer() >= size * 0.4, {
        timeoutMs: 60_000,
      });
      await agent.kill('SIGKILL');
      const beforeRestart = proxy.bytesFromServer();
      expect(beforeRestart).toBeLessThan(size);
      await device('e2e-resume', { stateDir, serverUrl: proxy.url, online: false });
      const done = await op.waitForUpdate(update, ['succeeded', 'failed', 'rolled_back'], 90_000);
      expect(done.state, JSON.stringify(done)).toBe('succeeded');
      expect(running(stateDir)).toBe('3.0.0');
      // All bytes the server sent, across both runs: the artifact once, plus what was in flight at the kill
      // and the small protocol traffic; far less than a second full download.
      const total = proxy.bytesFromServer();
      expect(total).toBeGreaterThan(size);
      expect(total).toBeLessThan(size + 8 * 1024 * 1024);
      expect(release.sha256).toHaveLength(64);
    } finally {
      await proxy.close();
    }
  });

  it('keeps reports while the server is down and delivers them once, in order, when it is back', async () => {
    await op.upload('name=slowcheck&version=2.6.0&hardware=pos-x200', randomBytes(4096));
    const agent = await device('e2e-outage', {
      flags: ['--health-cmd', 'sleep 4', '--health-deadline', '20s'],
    });
    const update = await assign('slowcheck@2.6.0', 'e2e-outage');
    await op.waitForUpdate(update, ['verifying']);
    await server.kill('SIGKILL');
    // The health check passes while the server is down: `succeeded` waits in the agent's outbox.
    await eventually(
      '`succeeded` in the outbox',
      () => outboxReports(agent.stateDir).some((r) => r.update_id === update && r.state === 'succeeded'),
      { timeoutMs: 30_000 },
    );
    server = await spawnServer(data, [
      '--port',
      String(port),
      '--heartbeat-interval',
      '1s',
      '--log-level',
      'warn',
    ]);
    const done = await op.waitForUpdate(update, ['succeeded', 'failed', 'rolled_back'], 60_000);
    expect(done.state).toBe('succeeded');
    expect(running(agent.stateDir)).toBe('2.6.0');
    expect((await updateEvents('e2e-outage')).map((e) => e.type)).toEqual(SUCCESS_EVENTS);
    expect(readdirSync(agent.stateDir)).not.toContain('job.json');
  });
});
