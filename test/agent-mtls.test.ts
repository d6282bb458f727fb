/**
 * The agent's device certificate over real TLS: a loopback https server that asks for client certificates
 * and trusts only a CA run by the openssl command. The agent enrolls with a CSR, heartbeats over mutual
 * TLS with no Authorization header, and renews at two thirds of the validity by its injected clock.
 */
import { X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Agent, AgentFatalError } from '../src/agent/agent.js';
import { silentLogger } from '../src/agent/log.js';
import { seededRandom } from '../src/agent/schedule.js';
import { generateKeyPair } from '../src/artifacts/signing.js';
import { ManualClock } from '../src/core/clock.js';
import { type OpensslCa, opensslCa } from './support/openssl-ca.js';
import { tempDir } from './support/processes.js';

const DAY = 86_400_000;
const API = '/api/device/v1';

interface Seen {
  path: string;
  /** The client certificate's CN and serial, when one was presented. */
  cn: string | undefined;
  serial: string | undefined;
  authorization: string | undefined;
  body: Record<string, unknown>;
}

/** The device half of the protocol, as much as identity needs; it refuses a body naming another device. */
class MtlsServer {
  readonly seen: Seen[] = [];
  renewalsDown = false;
  private server!: Server;
  url = '';

  constructor(private readonly ca: OpensslCa) {}

  async start(): Promise<void> {
    const pair = this.ca.serverPair();
    this.server = createServer(
      {
        cert: pair.certificatePem,
        key: pair.keyPem,
        ca: this.ca.certificatePem,
        requestCert: true,
        rejectUnauthorized: false, // enrollment comes without a client certificate; checked per route below
      },
      (req, res) => {
        let raw = '';
        req.on('data', (c: Buffer) => {
          raw += c.toString();
        });
        req.on('end', () => {
          const socket = req.socket as TLSSocket;
          const peer = socket.authorized ? socket.getPeerCertificate() : undefined;
          const body = JSON.parse(raw || '{}') as Record<string, unknown>;
          const seen: Seen = {
            path: req.url ?? '',
            cn: peer?.subject?.CN as string | undefined,
            serial: peer?.serialNumber,
            authorization: req.headers.authorization,
            body,
          };
          this.seen.push(seen);
          const reply = (status: number, json: unknown) => {
            res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
          };
          if (seen.path === `${API}/enroll`) {
            const certificate = this.ca.issue(String(body.csr), { days: 90 });
            return reply(201, {
              device_id: body.device_id,
              certificate,
              ca_certificate: this.ca.certificatePem,
            });
          }
          if (!peer?.subject)
            return reply(401, { error: { code: 'UNAUTHENTICATED', message: 'no certificate' } });
          if (seen.path === `${API}/certificate`) {
            if (this.renewalsDown) return reply(503, { error: { code: 'UNAVAILABLE', message: 'down' } });
            const certificate = this.ca.issue(String(body.csr), { days: 90 });
            return reply(200, { certificate, ca_certificate: this.ca.certificatePem });
          }
          if (seen.path === `${API}/heartbeat`) {
            if (body.device_id !== seen.cn)
              return reply(403, { error: { code: 'FORBIDDEN', message: 'not you' } });
            return reply(200, { pending_updates: [], next_heartbeat: 300 });
          }
          reply(404, { error: { code: 'NOT_FOUND', message: seen.path } });
        });
      },
    );
    await new Promise<void>((done) => this.server.listen(0, '127.0.0.1', done));
    this.url = `https://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  calls(path: string): Seen[] {
    return this.seen.filter((s) => s.path === `${API}${path}`);
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((done) => this.server.close(() => done()));
  }
}

let ca: OpensslCa;
const servers: MtlsServer[] = [];
const publicKey = generateKeyPair().publicKeyPem;

beforeAll(() => {
  ca = opensslCa('FleetD test CA');
});

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

async function setUp(extra: { renewAt?: number } = {}) {
  const server = new MtlsServer(ca);
  await server.start();
  servers.push(server);
  const clock = new ManualClock(Date.now());
  const stateDir = tempDir('fleetd-agent-');
  const agent = new Agent({
    server: server.url,
    deviceId: 'dev-mtls-1',
    hardwareType: 'pos-x200',
    stateDir,
    publicKey,
    enrollToken: 'fld_enroll_test',
    ca: ca.certificatePem,
    clock,
    random: seededRandom(3),
    log: silentLogger,
    ...extra,
  });
  return { server, clock, stateDir, agent };
}

describe('agent with a device certificate', () => {
  it('enrolls with a CSR for its own id, then heartbeats over mutual TLS with no Authorization header', async () => {
    const { server, stateDir, agent } = await setUp();
    await agent.runOnce();
    const [enroll] = server.calls('/enroll');
    expect(enroll?.body.csr).toMatch(/^-----BEGIN CERTIFICATE REQUEST-----/);
    expect(enroll?.body.enrollment_token).toBe('fld_enroll_test');
    const [heartbeat] = server.calls('/heartbeat');
    expect(heartbeat?.cn).toBe('dev-mtls-1');
    expect(heartbeat?.authorization).toBeUndefined();
    expect((await stat(`${stateDir}/device.pem`)).mode & 0o777).toBe(0o600);
    expect(await readFile(`${stateDir}/ca.pem`, 'utf8')).toContain('BEGIN CERTIFICATE');
    // The key never left: nothing the server received holds a private key.
    expect(JSON.stringify(server.seen)).not.toContain('PRIVATE KEY');
  });

  it('renews at two thirds of the validity with a new key, and uses the new certificate at once', async () => {
    const { server, clock, stateDir, agent } = await setUp();
    await agent.runOnce();
    const first = new X509Certificate(await readFile(`${stateDir}/device.pem`, 'utf8'));
    clock.advance(59 * DAY);
    const wait = await agent.runOnce();
    expect(server.calls('/certificate')).toHaveLength(0);
    // The step after this one is no later than the renewal.
    expect(wait).toBeLessThanOrEqual(DAY + 1000);
    clock.advance(DAY + 1000);
    await agent.runOnce();
    const [renewal] = server.calls('/certificate');
    expect(renewal?.serial).toBe(first.serialNumber); // asked with the old certificate
    const second = new X509Certificate(await readFile(`${stateDir}/device.pem`, 'utf8'));
    expect(second.serialNumber).not.toBe(first.serialNumber);
    expect(second.publicKey.export({ type: 'spki', format: 'pem' })).not.toBe(
      first.publicKey.export({ type: 'spki', format: 'pem' }),
    );
    // The heartbeat right after the renewal, in the same step, already presents the new certificate.
    expect(server.seen.at(-1)?.path).toBe(`${API}/heartbeat`);
    expect(server.seen.at(-1)?.serial).toBe(second.serialNumber);
  });

  it('a failed renewal keeps the old certificate working and is retried after its backoff', async () => {
    const { server, clock, stateDir, agent } = await setUp();
    await agent.runOnce();
    const before = await readFile(`${stateDir}/device.pem`, 'utf8');
    server.renewalsDown = true;
    clock.advance(61 * DAY);
    await agent.runOnce();
    expect(server.calls('/certificate')).toHaveLength(1);
    expect(await readFile(`${stateDir}/device.pem`, 'utf8')).toBe(before);
    const heartbeats = server.calls('/heartbeat').length;
    await agent.runOnce(); // inside the backoff: heartbeats, does not ask again
    expect(server.calls('/heartbeat').length).toBe(heartbeats + 1);
    expect(server.calls('/certificate')).toHaveLength(1);
    server.renewalsDown = false;
    clock.advance(3_600_000 * 1.2);
    await agent.runOnce();
    expect(server.calls('/certificate')).toHaveLength(2);
    expect(await readFile(`${stateDir}/device.pem`, 'utf8')).not.toBe(before);
  });

  it('a restarted agent picks up its certificate and CA from the state folder: no --ca, no token', async () => {
    const { server, stateDir, agent } = await setUp();
    await agent.runOnce();
    const again = new Agent({
      server: server.url,
      deviceId: 'dev-mtls-1',
      hardwareType: 'pos-x200',
      stateDir,
      publicKey,
      log: silentLogger,
    });
    await again.runOnce();
    expect(server.calls('/enroll')).toHaveLength(1);
    expect(server.calls('/heartbeat').at(-1)?.cn).toBe('dev-mtls-1');
  });

  it('certificate enrollment against a plain http server stops the agent with what to do', async () => {
    const agent = new Agent({
      server: 'http://127.0.0.1:9',
      deviceId: 'dev-x',
      hardwareType: 'pos-x200',
      stateDir: tempDir('fleetd-agent-'),
      publicKey,
      enrollToken: 't',
      enrollCertificate: true,
      ca: ca.certificatePem,
      log: silentLogger,
    });
    await expect(agent.runOnce()).rejects.toThrow(AgentFatalError);
    await expect(agent.runOnce()).rejects.toThrow(/over https only/);
  });

  it('a server whose certificate does not chain to the given CA is not talked to', async () => {
    const { server } = await setUp();
    const other = opensslCa('Another CA');
    const agent = new Agent({
      server: server.url,
      deviceId: 'dev-y',
      hardwareType: 'pos-x200',
      stateDir: tempDir('fleetd-agent-'),
      publicKey,
      enrollToken: 'fld_enroll_test',
      ca: other.certificatePem,
      log: silentLogger,
    });
    await agent.runOnce();
    expect(server.calls('/enroll')).toHaveLength(0);
  });
});
