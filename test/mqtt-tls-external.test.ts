/**
 * FleetD bridged to an external Mosquitto over TLS: the test writes Mosquitto's configuration (certificates
 * made by the real openssl, client certificates required, the identity in the certificate as the username,
 * an ACL holding each device to its topics), starts `mosquitto -c` on a free loopback port, and FleetD
 * connects over mqtts:// with the broker's CA and its own client certificate, from the same flags as
 * `fleetd server --mqtt mqtts://… --mqtt-ca --mqtt-cert --mqtt-key`. Devices publish with mosquitto_pub --cert.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningServer, startServer } from '../src/server/serve.js';
import { mqttSettingsFromFlags } from '../src/transport/cli-flags.js';
import { eventually } from './support/eventually.js';
import { type Operator, operator } from './support/fleet.js';
import { type MqttDevice, mqttDevice } from './support/mqtt-device.js';
import { type CertificateFiles, type OpensslCa, opensslCa } from './support/openssl-pki.js';
import { freePort, tempDir } from './support/processes.js';

const ROOT = `fleetd-tls-${randomBytes(4).toString('hex')}/devices`;

function run(command: string, args: string[]): Promise<{ status: number; output: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: 20_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ status: code, output: stdout + stderr });
    });
  });
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Starts Mosquitto with TLS on a free loopback port, its configuration written here. */
async function startMosquitto(
  dir: string,
  ca: OpensslCa,
  broker: CertificateFiles,
): Promise<{ port: number; child: ChildProcess; output: () => string }> {
  const port = await freePort();
  writeFileSync(
    join(dir, 'fleetd.acl'),
    [
      'user fleetd',
      `topic readwrite ${ROOT}/#`,
      '',
      `pattern write ${ROOT}/%u/heartbeat`,
      `pattern write ${ROOT}/%u/reports`,
      `pattern read ${ROOT}/%u/inbox`,
      '',
    ].join('\n'),
  );
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      `cafile ${ca.cert}`,
      `certfile ${broker.cert}`,
      `keyfile ${broker.key}`,
      'tls_version tlsv1.2',
      'require_certificate true',
      'use_identity_as_username true',
      `acl_file ${join(dir, 'fleetd.acl')}`,
      'persistence false',
      // Under root Mosquitto would switch to its own user, who cannot read the 0600 keys made here.
      ...(process.getuid?.() === 0 ? ['user root'] : []),
      '',
    ].join('\n'),
  );
  const child = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => {
    output += c.toString();
  });
  child.stderr!.on('data', (c: Buffer) => {
    output += c.toString();
  });
  await eventually(`mosquitto listening on ${port}`, async () => {
    if (child.exitCode !== null) throw new Error(`mosquitto exited: ${output}`);
    return portOpen(port);
  });
  return { port, child, output: () => output };
}

describe('FleetD bridged to Mosquitto over TLS', () => {
  let dir: string;
  let ca: OpensslCa;
  let mosquitto: Awaited<ReturnType<typeof startMosquitto>>;
  let server: RunningServer;
  let op: Operator;
  let bridgeCert: CertificateFiles;
  const devices: MqttDevice[] = [];

  beforeAll(async () => {
    dir = tempDir('fleetd-mosquitto-tls-');
    ca = opensslCa(dir, 'fleet');
    mosquitto = await startMosquitto(dir, ca, ca.server('mosquitto'));
    bridgeCert = ca.client('fleetd');
    const dataDir = tempDir();
    const settings = mqttSettingsFromFlags({
      mqtt: `mqtts://127.0.0.1:${mosquitto.port}`,
      ca: ca.cert,
      cert: bridgeCert.cert,
      key: bridgeCert.key,
    });
    server = await startServer({
      port: 0,
      dataDir,
      logLevel: 'silent',
      mqtt: { ...settings, topicRoot: ROOT, wakeIntervalMs: 100 },
    });
    await server.mqtt!.bridge.ready();
    op = operator(server.url, dataDir);
  });

  afterAll(async () => {
    await Promise.all(devices.map((d) => d.close()));
    await server?.close();
    if (mosquitto && mosquitto.child.exitCode === null) {
      const exited = new Promise((resolve) => mosquitto.child.once('exit', resolve));
      mosquitto.child.kill('SIGTERM');
      await exited;
    }
  });

  async function register(id: string): Promise<string> {
    await op.call('POST', '/api/v1/devices/import', {
      devices: [{ id, hardware_type: 'pos-x200', firmware_version: '1.0.0' }],
    });
    return (await op.call<{ credential: string }>('POST', `/api/v1/devices/${id}/credential`)).body
      .credential;
  }

  const pub = (certificate: CertificateFiles, clientId: string, topic: string, message: object) =>
    run('mosquitto_pub', [
      '-h',
      '127.0.0.1',
      '-p',
      String(mosquitto.port),
      '--cafile',
      ca.cert,
      '--cert',
      certificate.cert,
      '--key',
      certificate.key,
      '-i',
      clientId,
      '-q',
      '1',
      '-t',
      topic,
      '-m',
      JSON.stringify(message),
    ]);

  it('takes a heartbeat mosquitto_pub sends over TLS with its certificate and credential, and answers it', async () => {
    const credential = await register('ext-a');
    const cert = ca.client('ext-a');
    const inbox = await mqttDevice(`mqtts://127.0.0.1:${mosquitto.port}`, ROOT, 'ext-a', credential, {
      ca: [ca.certPem],
      cert: cert.certPem,
      key: cert.keyPem,
    });
    devices.push(inbox);
    const sent = await pub(cert, 'ext-a-pub', `${ROOT}/ext-a/heartbeat`, {
      device_id: 'ext-a',
      firmware_version: '1.4.0',
      credential,
      request_id: 'e1',
    });
    expect(sent).toMatchObject({ status: 0, output: '' });
    expect(await inbox.waitFor((m) => m.request_id === 'e1', 'the reply')).toMatchObject({
      type: 'heartbeat',
    });
    const device = await op.call<{ status: string; firmware_version: string }>(
      'GET',
      '/api/v1/devices/ext-a',
    );
    expect(device.body).toMatchObject({ status: 'online', firmware_version: '1.4.0' });
  });

  it('does not take an external broker’s word for who sent a message: no credential, no heartbeat', async () => {
    const credential = await register('ext-b');
    const cert = ca.client('ext-b');
    const inbox = await mqttDevice(`mqtts://127.0.0.1:${mosquitto.port}`, ROOT, 'ext-b', credential, {
      ca: [ca.certPem],
      cert: cert.certPem,
      key: cert.keyPem,
    });
    devices.push(inbox);
    await pub(cert, 'ext-b-pub', `${ROOT}/ext-b/heartbeat`, { device_id: 'ext-b', request_id: 'e2' });
    expect(await inbox.waitFor((m) => m.request_id === 'e2', 'the reply')).toMatchObject({
      type: 'error',
      error: { code: 'UNAUTHENTICATED' },
    });
    const device = await op.call<{ status: string }>('GET', '/api/v1/devices/ext-b');
    expect(device.body.status).toBe('unknown');
  });

  it('refuses to start with devices by certificate only (mtls), which an external broker cannot vouch for', async () => {
    await expect(
      startServer({
        port: 0,
        dataDir: tempDir(),
        logLevel: 'silent',
        mqtt: { url: `mqtts://127.0.0.1:${mosquitto.port}`, deviceAuth: 'mtls', topicRoot: ROOT },
      }),
    ).rejects.toThrow(/works with the embedded broker, not an external --mqtt broker/);
  });

  it('refuses a broker whose certificate its CA did not sign', async () => {
    const foreign = opensslCa(dir, 'foreign');
    const other = await startServer({
      port: 0,
      dataDir: tempDir(),
      logLevel: 'silent',
      mqtt: {
        ...mqttSettingsFromFlags({
          mqtt: `mqtts://127.0.0.1:${mosquitto.port}`,
          ca: foreign.cert,
          cert: bridgeCert.cert,
          key: bridgeCert.key,
        }),
        topicRoot: ROOT,
      },
    });
    try {
      const client = other.mqtt!.bridge.client;
      const error = await new Promise<Error>((resolve) => client.once('error', resolve));
      expect(error.message).toMatch(
        /self-signed certificate in certificate chain|unable to (get local issuer|verify)/i,
      );
      expect(client.connected).toBe(false);
    } finally {
      await other.close();
    }
  });
});
