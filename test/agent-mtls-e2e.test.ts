/**
 * A device from an empty server to the fleet over mutual TLS, as docs/provisioning.md walks it, with real
 * processes: `fleetd server --tls auto`, `fleetd devices provision`, `fleetd agent --bundle` and nothing
 * else. The agent enrolls with a CSR, heartbeats over mTLS, renews its (short-lived) certificate on its own,
 * and once `fleetd devices revoke` has run the server refuses it, and curl with its certificate too.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
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

const ID = 'e2e-mtls-1';
let server: ServerProcess;
let data: string;
let caFile: string;
let stateDir: string;
let agent: AgentProcess | undefined;
let dispatcher: Dispatcher;

beforeAll(async () => {
  data = tempDir();
  server = await spawnServer(data, [
    '--tls',
    'auto',
    '--no-mqtt',
    '--heartbeat-interval',
    '1s',
    // Renewal is due at two thirds: about 10 s after each certificate arrives.
    '--device-cert-validity',
    '15s',
    '--log-level',
    'warn',
  ]);
  caFile = join(data, 'pki', 'ca.crt');
  dispatcher = new Dispatcher({ connect: { ca: readFileSync(caFile, 'utf8') } });
  stateDir = join(tempDir('fleetd-device-'), 'state');
});

afterAll(async () => {
  await agent?.kill('SIGKILL');
  await server.kill();
  await dispatcher.close();
});

const cli = (...args: string[]) => runCli(['--server', server.url, '--data', data, ...args]);

/** The operator API over the server's TLS, trusting the FleetD CA. */
async function api<T>(
  method: string,
  path: string,
  body?: unknown,
  type = 'application/json',
): Promise<{ status: number; body: T }> {
  const token = readFileSync(join(data, 'admin-token'), 'utf8').trim();
  const r = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': type }) },
    ...(body === undefined
      ? {}
      : { body: type === 'application/json' ? JSON.stringify(body) : (body as Buffer) }),
    dispatcher,
  });
  return { status: r.status, body: (await r.json()) as T };
}

async function device(): Promise<
  { status?: string; last_seen?: string | null; firmware_version?: string | null } | undefined
> {
  const r = await api<{ status?: string; last_seen?: string | null }>('GET', `/api/v1/devices/${ID}`);
  return r.status === 200 ? r.body : undefined;
}

const certificate = () => new X509Certificate(readFileSync(join(stateDir, 'device.pem')));

describe('a provisioned device over mutual TLS', () => {
  it('enrolls from the bundle alone, heartbeats and installs an update over mTLS, renews its certificate, and is refused once revoked', async () => {
    expect(server.url).toMatch(/^https:\/\//);
    const bundle = join(tempDir(), `${ID}.tar.gz`);
    const made = cli(
      'devices',
      'provision',
      ID,
      '--hardware',
      'pos-x200',
      '--out',
      bundle,
      '--state-dir',
      stateDir,
    );
    expect(made.stderr).not.toMatch(/^fleetd:/m);
    expect(made.code).toBe(0);

    agent = spawnAgent(['--bundle', bundle]);
    await eventually(`${ID} online`, async () => (await device())?.status === 'online', {
      timeoutMs: 20_000,
    });
    // A certificate, never a bearer credential: the key was made here and is kept 0600.
    expect(existsSync(join(stateDir, 'credential'))).toBe(false);
    expect(statSync(join(stateDir, 'device.pem')).mode & 0o777).toBe(0o600);
    const first = certificate();
    expect(first.subject).toContain(`CN=${ID}`);
    expect(first.checkIssued(new X509Certificate(readFileSync(caFile)))).toBe(true);

    // An update: the download, like every other call, goes over mutual TLS.
    const upload = await api(
      'POST',
      '/api/v1/artifacts?name=pos-fw&version=2.3.0&hardware=pos-x200',
      randomBytes(64 * 1024),
      'application/octet-stream',
    );
    expect(upload.status).toBe(201);
    const assigned = await api<{ assigned: Array<{ id: string }> }>('POST', '/api/v1/updates/assign', {
      release: 'pos-fw@2.3.0',
      devices: [ID],
    });
    const updateId = assigned.body.assigned[0]!.id;
    await eventually(
      'the update to succeed',
      async () => {
        const state = (await api<{ state?: string }>('GET', `/api/v1/updates/${updateId}`)).body.state;
        if (state === 'failed' || state === 'rolled_back') throw new Error(`update ${state}`);
        return state === 'succeeded';
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );

    // Renewal: a new certificate (new key) replaces it, and heartbeats keep landing after it.
    await eventually(
      'a renewed certificate',
      () => certificate().serialNumber !== first.serialNumber || undefined,
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    expect(certificate().publicKey.export({ type: 'spki', format: 'pem' })).not.toBe(
      first.publicKey.export({ type: 'spki', format: 'pem' }),
    );
    const seenAfterRenewal = (await device())?.last_seen ?? '';
    await eventually(
      'a heartbeat with the new certificate',
      async () => ((await device())?.last_seen ?? '') > seenAfterRenewal,
      {
        timeoutMs: 10_000,
      },
    );
    expect(agent.output()).toContain('device certificate renewed');

    // Revocation: refused at once, the agent says so and stops sending.
    const revoked = cli('devices', 'revoke', ID);
    expect(revoked.code).toBe(0);
    await eventually(
      'the agent to see it is refused',
      () => agent!.output().includes("the server refuses this device's credential"),
      {
        timeoutMs: 15_000,
      },
    );
    const curl = execFileSync(
      'curl',
      [
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '--cacert',
        caFile,
        '--cert',
        join(stateDir, 'device.pem'),
      ]
        .concat(['-H', 'content-type: application/json', '-d', JSON.stringify({ device_id: ID })])
        .concat([`${server.url}/api/device/v1/heartbeat`]),
      { encoding: 'utf8' },
    );
    expect(curl).toBe('401');
  });
});
