/**
 * The embedded broker over TLS, with certificates made by the real openssl: a device logs in with its client
 * certificate (mosquitto_pub --cert, mqtt.js, the agent's MqttChannel) and is the device the certificate
 * names; the certificate of one device on another's topic, expired, foreign-CA and self-signed certificates,
 * TLS 1.1 and, with deviceAuth 'mtls', the plain port and bearer logins are all refused.
 */
import { spawn } from 'node:child_process';
import { connect as tcpConnect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceClient } from '../src/agent/client.js';
import { silentLogger } from '../src/agent/log.js';
import { MqttChannel } from '../src/agent/mqtt-channel.js';
import { type RunningServer, startServer } from '../src/server/serve.js';
import { FLEETD_ISSUER } from '../src/store/store.js';
import { DEFAULT_TOPIC_ROOT } from '../src/transport/topics.js';
import { eventually } from './support/eventually.js';
import { type Operator, operator } from './support/fleet.js';
import { type MqttDevice, mqttDevice } from './support/mqtt-device.js';
import { type CertificateFiles, type OpensslCa, opensslCa, selfSigned } from './support/openssl-pki.js';
import { freePort, tempDir } from './support/processes.js';

const ROOT = DEFAULT_TOPIC_ROOT;

/** A command line run without blocking the event loop (the server under test is in this process). */
function run(command: string, args: string[], input = ''): Promise<{ status: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => {
      output += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      output += c.toString();
    });
    const timer = setTimeout(() => child.kill(), 20_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ status: code ?? -1, output });
    });
    child.stdin.end(input);
  });
}

interface Pki {
  dir: string;
  ca: OpensslCa;
  server: CertificateFiles;
}

function makePki(): Pki {
  const dir = tempDir('fleetd-mqtt-tls-');
  const ca = opensslCa(dir, 'fleet');
  return { dir, ca, server: ca.server('broker') };
}

interface TlsFleet {
  server: RunningServer;
  op: Operator;
  tlsPort: number;
  plainPort: number;
  /** Registers a device; records each certificate as its own in the registry. */
  register(id: string, ...certificates: CertificateFiles[]): Promise<void>;
  credential(id: string): Promise<string>;
  status(id: string): Promise<{ status: string; firmware_version: string | null }>;
  /** mqtt:// or mqtts:// client options of a device logging in with a certificate. */
  tlsOptions(c?: CertificateFiles): { ca: string[]; cert?: string; key?: string };
  /** mosquitto_pub over TLS with this certificate (or none). */
  pub(
    topic: string,
    message: object,
    options: { certificate?: CertificateFiles; clientId: string; login?: [string, string] },
  ): Promise<{ status: number; output: string }>;
  refusals(): Promise<
    Array<{ deviceId: string | null; reason: string | null; data: Record<string, unknown> }>
  >;
  close(): Promise<void>;
}

async function tlsFleet(pki: Pki, deviceAuth: 'any' | 'mtls'): Promise<TlsFleet> {
  const dataDir = tempDir();
  const plainPort = await freePort();
  const server = await startServer({
    port: 0,
    dataDir,
    logLevel: 'silent',
    mqtt: {
      port: plainPort,
      portRequired: true,
      tlsPort: 0,
      tlsPortRequired: true,
      deviceAuth,
      tls: { certificatePem: pki.server.certPem, privateKeyPem: pki.server.keyPem, caPems: [pki.ca.certPem] },
      wakeIntervalMs: 100,
    },
  });
  const tlsPort = Number(new URL(server.mqtt!.tlsUrl!).port);
  const op = operator(server.url, dataDir);
  const devices: MqttDevice[] = [];
  return {
    server,
    op,
    tlsPort,
    plainPort,
    async register(id, ...certificates) {
      await op.call('POST', '/api/v1/devices/import', {
        devices: [{ id, hardware_type: 'pos-x200', firmware_version: '1.0.0' }],
      });
      const now = Date.now();
      for (const c of certificates) {
        await server.store.certificates.record(
          {
            serial: c.serial,
            deviceId: id,
            fingerprint: c.fingerprint,
            issuer: FLEETD_ISSUER,
            notBefore: now - 60_000,
            notAfter: now + 86_400_000,
            issuedAt: now,
          },
          'test',
        );
      }
    },
    async credential(id) {
      return (await op.call<{ credential: string }>('POST', `/api/v1/devices/${id}/credential`)).body
        .credential;
    },
    async status(id) {
      return (
        await op.call<{ status: string; firmware_version: string | null }>('GET', `/api/v1/devices/${id}`)
      ).body;
    },
    tlsOptions: (c) => ({ ca: [pki.ca.certPem], ...(c ? { cert: c.certPem, key: c.keyPem } : {}) }),
    pub(topic, message, { certificate, clientId, login }) {
      return run('mosquitto_pub', [
        '-h',
        '127.0.0.1',
        '-p',
        String(tlsPort),
        '--cafile',
        pki.ca.cert,
        ...(certificate ? ['--cert', certificate.cert, '--key', certificate.key] : []),
        ...(login ? ['-u', login[0], '-P', login[1]] : []),
        '-i',
        clientId,
        '-q',
        '1',
        '-t',
        topic,
        '-m',
        JSON.stringify(message),
      ]);
    },
    async refusals() {
      const events = await server.store.listEvents({ typePrefix: 'mqtt.refused', limit: 100 });
      return events.map((e) => ({ deviceId: e.deviceId, reason: e.reason, data: e.data }));
    },
    async close() {
      await Promise.all(devices.map((d) => d.close()));
      await server.close();
    },
  };
}

/** Connects an mqtt.js device over TLS and keeps it for closing. */
async function tlsDevice(
  f: TlsFleet,
  id: string,
  credential: string,
  certificate?: CertificateFiles,
): Promise<MqttDevice> {
  return mqttDevice(`mqtts://127.0.0.1:${f.tlsPort}`, ROOT, id, credential, f.tlsOptions(certificate));
}

describe('the embedded broker over TLS (device auth: any)', () => {
  let pki: Pki;
  let f: TlsFleet;
  const open: MqttDevice[] = [];
  beforeAll(async () => {
    pki = makePki();
    f = await tlsFleet(pki, 'any');
  });
  afterAll(async () => {
    await Promise.all(open.map((d) => d.close()));
    await f?.close();
  });

  it('takes a heartbeat from mosquitto_pub --cert as the device the certificate names, with no credential', async () => {
    const cert = pki.ca.client('tls-a');
    await f.register('tls-a', cert);
    const inbox = await tlsDevice(f, 'tls-a', '', cert);
    open.push(inbox);
    const pub = await f.pub(
      `${ROOT}/tls-a/heartbeat`,
      { device_id: 'tls-a', firmware_version: '1.2.3', request_id: 'p1' },
      { certificate: cert, clientId: 'tls-a/pub' },
    );
    expect(pub.output).toBe('');
    expect(pub.status).toBe(0);
    const reply = await inbox.waitFor((m) => m.request_id === 'p1', 'the heartbeat reply');
    expect(reply).toMatchObject({ type: 'heartbeat', pending_updates: [] });
    expect(await f.status('tls-a')).toMatchObject({ status: 'online', firmware_version: '1.2.3' });
  });

  it('refuses a certificate on another device’s topic and under another device’s client id, with an event', async () => {
    const certA = pki.ca.client('tls-owner');
    const certB = pki.ca.client('tls-victim');
    await f.register('tls-owner', certA);
    await f.register('tls-victim', certB);
    const onOther = await f.pub(
      `${ROOT}/tls-victim/heartbeat`,
      { device_id: 'tls-victim', firmware_version: '6.6.6' },
      { certificate: certA, clientId: 'tls-owner/pub' },
    );
    expect(onOther.status).not.toBe(0);
    const asOther = await f.pub(
      `${ROOT}/tls-victim/heartbeat`,
      { device_id: 'tls-victim' },
      { certificate: certA, clientId: 'tls-victim' },
    );
    expect(asOther.status).not.toBe(0);
    expect(asOther.output).toMatch(/identifier rejected/i);
    const refusals = await eventually('both refusals recorded', async () => {
      const found = (await f.refusals()).filter((r) => r.deviceId === 'tls-owner');
      return found.length >= 2 && found;
    });
    expect(refusals.map((r) => r.reason)).toEqual(
      expect.arrayContaining([
        'certificate of tls-owner used on a topic that is not its own',
        "certificate of tls-owner with another device's username or client id",
      ]),
    );
    expect(refusals[0]!.data).toMatchObject({ certificate_sha256: certA.fingerprint });
    // The refused publish never reached the server: the other device never came online.
    expect(await f.status('tls-victim')).toMatchObject({ status: 'unknown', firmware_version: '1.0.0' });
    // Its own topic works with the same certificate.
    const own = await f.pub(
      `${ROOT}/tls-owner/heartbeat`,
      { device_id: 'tls-owner' },
      {
        certificate: certA,
        clientId: 'tls-owner/pub',
      },
    );
    expect(own.status).toBe(0);
    await eventually('tls-owner online', async () => (await f.status('tls-owner')).status === 'online');
  });

  it('refuses expired, foreign-CA, self-signed and unregistered client certificates at CONNECT', async () => {
    const expired = pki.ca.client('tls-bad', { days: -1 });
    const foreign = opensslCa(pki.dir, 'foreign').client('tls-bad');
    const self = selfSigned(pki.dir, 'tls-bad');
    // Registered, so the certificate itself is the only thing wrong with each of them.
    await f.register('tls-bad', expired, foreign, self);
    const unregistered = pki.ca.client('tls-nobody');
    for (const [certificate, reason] of [
      [expired, /expired/i],
      [foreign, /UNABLE_TO_(GET_ISSUER|VERIFY_LEAF)/],
      [self, /SELF_SIGNED/],
      [unregistered, /no active device/],
    ] as const) {
      const pub = await f.pub(
        `${ROOT}/tls-bad/heartbeat`,
        { device_id: 'tls-bad' },
        {
          certificate,
          clientId: 'tls-bad/pub',
        },
      );
      expect(pub.status).not.toBe(0);
      expect(pub.output).toMatch(/not authori[sz]ed/i);
      const refusal = await eventually(`the refusal of ${certificate.cert}`, async () =>
        (await f.refusals()).find((r) => r.data.certificate_sha256 === certificate.fingerprint),
      );
      expect(refusal.reason).toMatch(reason);
    }
    expect((await f.status('tls-bad')).status).toBe('unknown');
  });

  it('stops taking a certificate’s messages once it is revoked, on the open connection too', async () => {
    const cert = pki.ca.client('tls-rev');
    await f.register('tls-rev', cert);
    const device = await tlsDevice(f, 'tls-rev', '', cert);
    open.push(device);
    expect(await device.ask('heartbeat', { device_id: 'tls-rev' })).toMatchObject({ type: 'heartbeat' });
    await f.server.store.certificates.revokeDevice('tls-rev', Date.now(), 'test');
    expect(await device.ask('heartbeat', { device_id: 'tls-rev' })).toMatchObject({
      type: 'error',
      error: { code: 'UNAUTHENTICATED' },
    });
    expect(await device.ask('reports', { update_id: 'upd_x', seq: 1, state: 'downloading' })).toMatchObject({
      type: 'error',
      error: { code: 'UNAUTHENTICATED' },
    });
    await expect(tlsDevice(f, 'tls-rev', '', cert)).rejects.toThrow(/not authori[sz]ed/i);
  });

  it('still takes bearer devices, over TLS without a certificate and on the plain port', async () => {
    await f.register('tls-bearer');
    const credential = await f.credential('tls-bearer');
    const overTls = await tlsDevice(f, 'tls-bearer', credential);
    const plain = await mqttDevice(`mqtt://127.0.0.1:${f.plainPort}`, ROOT, 'tls-bearer', credential);
    open.push(overTls, plain);
    expect(await overTls.ask('heartbeat', { device_id: 'tls-bearer' })).toMatchObject({ type: 'heartbeat' });
    expect(await plain.ask('heartbeat', { device_id: 'tls-bearer' })).toMatchObject({ type: 'heartbeat' });
    await expect(
      mqttDevice(`mqtts://127.0.0.1:${f.tlsPort}`, ROOT, 'tls-bearer', 'tls-bearer.fld_device_wrong', {
        ca: [pki.ca.certPem],
      }),
    ).rejects.toThrow(/bad user ?name or password/i);
  });

  it('takes the certificates of a CA added at run time, from the next connection on', async () => {
    const factory = opensslCa(pki.dir, 'factory');
    const cert = factory.client('tls-factory');
    await f.register('tls-factory', cert);
    const send = () =>
      f.pub(
        `${ROOT}/tls-factory/heartbeat`,
        { device_id: 'tls-factory' },
        {
          certificate: cert,
          clientId: 'tls-factory/pub',
        },
      );
    expect((await send()).status).not.toBe(0);
    f.server.mqtt!.setTls({
      certificatePem: pki.server.certPem,
      privateKeyPem: pki.server.keyPem,
      caPems: [pki.ca.certPem, factory.certPem],
    });
    expect(await send()).toMatchObject({ status: 0, output: '' });
    await eventually('tls-factory online', async () => (await f.status('tls-factory')).status === 'online');
  });

  it('speaks TLS 1.2 and 1.3 only: openssl s_client -tls1_1 is refused', async () => {
    const args = ['s_client', '-connect', `127.0.0.1:${f.tlsPort}`, '-CAfile', pki.ca.cert, '-brief'];
    const old = await run('openssl', [...args, '-tls1_1', '-cipher', 'DEFAULT:@SECLEVEL=0']);
    expect(old.status).not.toBe(0);
    // The client did offer TLS 1.1 (security level 0 lets it) and the server answered with its refusal.
    expect(old.output).toMatch(/alert protocol version/);
    expect(old.output).not.toMatch(/Protocol version: TLSv1\.1/);
    const v12 = await run('openssl', [...args, '-tls1_2']);
    expect(v12.output).toMatch(/Protocol version: TLSv1\.2/);
    expect(v12.output).toMatch(/Verification: OK/);
  });

  it('lets the agent’s MqttChannel heartbeat with its certificate and the broker’s CA', async () => {
    const cert = pki.ca.client('tls-agent');
    await f.register('tls-agent', cert);
    // No credential: HTTP could not answer this device, so an answer can only have come over MQTT.
    const http = new DeviceClient(f.server.url, fetch);
    let woken = 0;
    const channel = new MqttChannel({
      url: `mqtts://127.0.0.1:${f.tlsPort}`,
      deviceId: 'tls-agent',
      http,
      log: silentLogger,
      onWake: () => woken++,
      tls: () => ({ caPems: [pki.ca.certPem], certificatePem: cert.certPem, privateKeyPem: cert.keyPem }),
    });
    try {
      await channel.heartbeat({ device_id: 'tls-agent' }).catch(() => undefined); // connects
      await eventually('the channel to connect', () => channel.connected && woken > 0);
      const answer = await channel.heartbeat({ device_id: 'tls-agent', firmware_version: '3.0.0' });
      expect(answer.nextHeartbeatSec).toBe(300);
      expect(await f.status('tls-agent')).toMatchObject({ status: 'online', firmware_version: '3.0.0' });
    } finally {
      await channel.close();
    }
  });
});

describe('the embedded broker with device auth mtls', () => {
  let pki: Pki;
  let f: TlsFleet;
  beforeAll(async () => {
    pki = makePki();
    f = await tlsFleet(pki, 'mtls');
  });
  afterAll(async () => f?.close());

  it('keeps the plain port closed and names the TLS listener', async () => {
    expect(f.server.mqtt!.url).toBe(f.server.mqtt!.tlsUrl);
    expect(f.server.mqtt!.url).toMatch(/^mqtts:\/\//);
    const refused = await new Promise<string>((resolve) => {
      const socket = tcpConnect(f.plainPort, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    });
    expect(refused).toBe('ECONNREFUSED');
  });

  it('takes a device certificate, and refuses bearer logins and bad certificates at the TLS handshake', async () => {
    const cert = pki.ca.client('mtls-a');
    const expired = pki.ca.client('mtls-a', { days: -1 });
    await f.register('mtls-a', cert, expired);
    const ok = await f.pub(
      `${ROOT}/mtls-a/heartbeat`,
      { device_id: 'mtls-a' },
      {
        certificate: cert,
        clientId: 'mtls-a/pub',
      },
    );
    expect(ok.status).toBe(0);
    await eventually('mtls-a online', async () => (await f.status('mtls-a')).status === 'online');

    await f.register('mtls-bearer');
    const credential = await f.credential('mtls-bearer');
    const noCert = await f.pub(
      `${ROOT}/mtls-bearer/heartbeat`,
      { device_id: 'mtls-bearer', credential },
      { clientId: 'mtls-bearer', login: ['mtls-bearer', credential] },
    );
    expect(noCert.status).not.toBe(0);
    expect(noCert.output).not.toMatch(/not authori[sz]ed/i); // refused before MQTT: at the handshake
    const stale = await f.pub(
      `${ROOT}/mtls-a/heartbeat`,
      { device_id: 'mtls-a' },
      {
        certificate: expired,
        clientId: 'mtls-a/pub',
      },
    );
    expect(stale.status).not.toBe(0);
    expect(stale.output).not.toMatch(/not authori[sz]ed/i); // refused before MQTT: at the handshake
    expect((await f.status('mtls-bearer')).status).toBe('unknown');
  });
});
