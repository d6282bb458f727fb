/**
 * The agent over MQTT end to end: a real server process with its embedded broker, real `fleetd agent --mqtt`
 * processes. The server asks for a heartbeat only once an hour, so an update assigned after the agent
 * started reaches it only through a wake-up. An HTTP proxy in front of the server records which device
 * calls went over HTTP: the download must, the status reports must not.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Agent, startAgent } from './support/agents.js';
import { eventually } from './support/eventually.js';
import { type Operator, operator } from './support/fleet.js';
import { freePort, type ServerProcess, spawnServer, tempDir } from './support/processes.js';
import { recordingProxy } from './support/recording-proxy.js';

let server: ServerProcess;
let op: Operator;
const agents: Agent[] = [];

beforeAll(async () => {
  const data = tempDir();
  server = await spawnServer(data, ['--heartbeat-interval', '1h', '--log-level', 'warn']);
  expect(server.mqttUrl).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/);
  op = operator(server.url, data);
});

afterAll(async () => {
  await Promise.all(agents.map((a) => a.kill('SIGKILL')));
  await server?.kill();
});

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

describe('fleetd agent --mqtt', () => {
  it('is woken for an assigned update, reports over MQTT, downloads over HTTP and ends succeeded', async () => {
    await op.upload('name=mqtt-fw&version=2.3.0&hardware=pos-x200', randomBytes(128 * 1024));
    const proxy = await recordingProxy(server.url);
    try {
      const agent = await startAgent(op, 'mqtt-good', {
        serverUrl: proxy.url,
        firmware: '2.1.0',
        flags: ['--mqtt', server.mqttUrl!],
        online: false,
      });
      agents.push(agent);
      await eventually('the agent to connect over MQTT', () => agent.output().includes('MQTT connected'), {
        timeoutMs: 30_000,
      });
      const update = await assign('mqtt-fw@2.3.0', 'mqtt-good');
      const done = await op.waitForUpdate(update, ['succeeded', 'failed', 'rolled_back']);
      expect(done.state, agent.output()).toBe('succeeded');
      const device = proxy.seen.filter((r) => r.includes('/api/device/v1/'));
      expect(device.some((r) => r.startsWith('GET /api/device/v1/artifacts/'))).toBe(true);
      expect(device.filter((r) => r.includes('/status'))).toEqual([]);
      // The new firmware arrives with the next heartbeat, which the agent makes right after succeeding.
      await eventually(
        'the device to report firmware 2.3.0',
        async () =>
          (await op.call<{ firmware_version: string }>('GET', '/api/v1/devices/mqtt-good')).body
            .firmware_version === '2.3.0',
        { timeoutMs: 30_000 },
      );
    } finally {
      proxy.close();
    }
  });

  it('falls back to HTTP when the broker is unreachable', async () => {
    // A server that asks for heartbeats every second: polling over HTTP is what the device falls back to.
    const data = tempDir();
    const polling = await spawnServer(data, [
      '--heartbeat-interval',
      '1s',
      '--no-mqtt',
      '--log-level',
      'warn',
    ]);
    const pollingOp = operator(polling.url, data);
    const proxy = await recordingProxy(polling.url);
    try {
      await pollingOp.upload('name=mqtt-down&version=2.4.0&hardware=pos-x200', randomBytes(4096));
      // Online once this resolves: the device heartbeats over HTTP.
      const agent = await startAgent(pollingOp, 'mqtt-fallback', {
        serverUrl: proxy.url,
        firmware: '2.1.0',
        flags: ['--mqtt', `mqtt://127.0.0.1:${await freePort()}`],
      });
      agents.push(agent);
      const r = await pollingOp.call<{ assigned: Array<{ id: string }> }>('POST', '/api/v1/updates/assign', {
        release: 'mqtt-down@2.4.0',
        devices: ['mqtt-fallback'],
      });
      const done = await pollingOp.waitForUpdate(r.body.assigned[0]!.id, [
        'succeeded',
        'failed',
        'rolled_back',
      ]);
      expect(done.state, agent.output()).toBe('succeeded');
      expect(proxy.seen.some((q) => q.includes('/status'))).toBe(true);
      expect(agent.output()).toContain('MQTT unavailable; using HTTP');
    } finally {
      proxy.close();
      await polling.kill();
    }
  });
});
