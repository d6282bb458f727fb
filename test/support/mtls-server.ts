/**
 * A FleetD app (built by the composition root, createServer) behind a real HTTPS listener that asks for client
 * certificates and trusts the FleetD CA, and `curl` as the device: mutual TLS as a device speaks it. The server
 * certificate is issued by the same CA, so curl verifies the server too (never -k).
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { ManualClock } from '../../src/core/clock.js';
import { issueServerCertificate, loadOrCreateAuthority } from '../../src/pki/authority.js';
import { hashSecret, newSecret } from '../../src/registry/credentials.js';
import type { DeviceAuthMode } from '../../src/server/context.js';
import { createServer } from '../../src/server/serve.js';
import type { Store } from '../../src/store/store.js';
import { tempDir } from './processes.js';

export const run = promisify(execFile);

export interface MtlsServer {
  url: string;
  app: FastifyInstance;
  store: Store;
  clock: ManualClock;
  /** A folder for the test's keys and certificates; `ca.crt` in it is the FleetD CA. */
  dir: string;
  caFile: string;
  admin: { authorization: string };
  close(): Promise<void>;
}

export async function startMtlsServer(
  store: Store,
  options: { deviceAuth?: DeviceAuthMode; deviceCertValidityMs?: number } = {},
): Promise<MtlsServer> {
  const dataDir = tempDir();
  const dir = tempDir('fleetd-mtls-');
  const clock = new ManualClock(Date.now());
  const adminToken = newSecret('admin');
  await store.createApiToken(
    { id: 'tok_admin', name: 'admin', role: 'admin', createdAt: clock.now() },
    hashSecret(adminToken),
  );
  const { app } = await createServer({ dataDir, store, clock, logLevel: 'silent', ...options });
  await app.ready();
  // The CA the server issues device certificates from (<data>/pki), made now: the listener trusts it.
  const ca = await loadOrCreateAuthority(join(dataDir, 'pki'), new Date());
  const serverCertificate = await issueServerCertificate(ca, ['127.0.0.1', 'localhost'], new Date());
  const caFile = join(dir, 'ca.crt');
  writeFileSync(caFile, ca.certificatePem);
  const https: Server = createHttpsServer(
    {
      key: serverCertificate.privateKeyPem,
      cert: serverCertificate.certificatePem,
      ca: [ca.certificatePem],
      requestCert: true,
      // The handshake completes for any certificate so FleetD can answer why it refuses one (and record it).
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
    },
    (req, res) => app.routing(req, res),
  );
  await new Promise<void>((ready) => https.listen(0, '127.0.0.1', ready));
  const { port } = https.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    app,
    store,
    clock,
    dir,
    caFile,
    admin: { authorization: `Bearer ${adminToken}` },
    async close() {
      https.closeAllConnections();
      await new Promise((done) => https.close(done));
      await app.close();
    },
  };
}

export interface CurlReply {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: the test reads whatever JSON the server answered.
  body: any;
}

/** One HTTPS request by curl, as a device makes it: optional client certificate, optional bearer credential. */
export async function curl(
  server: MtlsServer,
  method: string,
  path: string,
  options: { cert?: string; key?: string; bearer?: string; json?: unknown } = {},
): Promise<CurlReply> {
  const args = ['-sS', '-X', method, '--cacert', server.caFile, '-w', '\n%{http_code}'];
  if (options.cert)
    args.push('--cert', join(server.dir, options.cert), '--key', join(server.dir, options.key!));
  if (options.bearer) args.push('-H', `authorization: Bearer ${options.bearer}`);
  if (options.json !== undefined) {
    args.push('-H', 'content-type: application/json', '--data-binary', JSON.stringify(options.json));
  }
  args.push(`${server.url}${path}`);
  const { stdout } = await run('curl', args);
  const at = stdout.lastIndexOf('\n');
  const text = stdout.slice(0, at);
  return { status: Number(stdout.slice(at + 1)), body: text.startsWith('{') ? JSON.parse(text) : text };
}

/** `openssl …` in the server's test folder. */
export async function openssl(server: MtlsServer, args: string[]): Promise<void> {
  await run('openssl', args, { cwd: server.dir });
}

/** A P-256 key and a CSR with the given subject CN, as a device would make them. */
export async function makeCsr(server: MtlsServer, name: string, cn: string): Promise<string> {
  await openssl(server, [
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    `/CN=${cn}`,
  ]);
  return readFileSync(join(server.dir, `${name}.csr`), 'utf8');
}

export function writeFile(server: MtlsServer, name: string, text: string): void {
  writeFileSync(join(server.dir, name), text);
}
