/**
 * A device over MQTT with its certificate, end to end with real processes: `fleetd server --tls auto
 * --device-auth mtls` (no plain broker port, no bearer credentials), a bundle that names the broker's TLS
 * listener, and `fleetd agent --bundle`. The agent enrolls with a CSR over HTTPS, then heartbeats over
 * MQTT as the device its certificate names, and a revoked certificate stops its messages at once.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent as Dispatcher, fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from './support/eventually.js';
import {
  type AgentProcess,
  runCli,
  type ServerProcess,
  spawnAgent,
  spawnServer,
  tempDir,
} from './support/processes.js';

const ID = 'e2e-mqtt-mtls-1';
let server: ServerProcess;
let data: string;
let agent: AgentProcess | undefined;
let dispatcher: Dispatcher;

beforeAll(async () => {
  data = tempDir();
  server = await spawnServer(data, [
    '--tls',
    'auto',
    '--device-auth',
    'mtls',
    '--mqtt-tls-port',
    '0',
    // Over HTTP the device would be asked only hourly: what it reports comes over MQTT.
    '--heartbeat-interval',
    '1s',
    '--log-level',
    'warn',
  ]);
  dispatcher = new Dispatcher({ connect: { ca: readFileSync(join(data, 'pki', 'ca.crt'), 'utf8') } });
});

afterAll(async () => {
  await agent?.kill('SIGKILL');
  await server.kill();
  await dispatcher.close();
});

const cli = (...args: string[]) => runCli(['--server', server.url, '--data', data, ...args]);

async function lastSeen(): Promise<string | null | undefined> {
  const token = readFileSync(join(data, 'admin-token'), 'utf8').trim();
  const r = await fetch(`${server.url}/api/v1/devices/${ID}`, {
    headers: { authorization: `Bearer ${token}` },
    dispatcher,
  });
  return r.status === 200 ? ((await r.json()) as { last_seen: string | null }).last_seen : undefined;
}

describe('a device over MQTT with mutual TLS', () => {
  it('enrolls with a CSR, heartbeats over the TLS broker as itself, and is refused once revoked', async () => {
    // mtls: the plain broker port is closed, only the TLS one listens.
    expect(server.mqttUrl).toBeUndefined();
    expect(server.mqttsUrl).toMatch(/^mqtts:\/\/127\.0\.0\.1:\d+$/);
    const bundle = join(tempDir(), `${ID}.tar.gz`);
    const made = cli(
      'devices',
      'provision',
      ID,
      '--hardware',
      'sensor-a1',
      '--out',
      bundle,
      '--mqtt',
      server.mqttsUrl!,
      '--state-dir',
      join(tempDir('fleetd-device-'), 'state'),
    );
    expect(made.stderr).not.toMatch(/^fleetd:/m);
    expect(made.code).toBe(0);

    agent = spawnAgent(['--bundle', bundle]);
    await eventually(
      'the agent on the broker',
      () => agent!.output().includes('MQTT connected') || undefined,
      {
        timeoutMs: 20_000,
      },
    );
    // Heartbeats keep landing: over MQTT, since the broker connection is up and answers them.
    const first = await eventually('a first heartbeat', async () => (await lastSeen()) ?? undefined, {
      timeoutMs: 20_000,
    });
    await eventually('a later heartbeat', async () => ((await lastSeen()) ?? '') > first, {
      timeoutMs: 20_000,
    });

    expect(cli('devices', 'revoke', ID).code).toBe(0);
    // The open broker connection stays, but its messages are no longer this device's: refused at once.
    await eventually(
      'the agent to see it is refused',
      () => agent!.output().includes("the server refuses this device's credential") || undefined,
      { timeoutMs: 20_000 },
    );
  });
});
