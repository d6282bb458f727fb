/**
 * A FleetD server built by the composition root (createServer) listening with `--tls auto` (the FleetD CA issues
 * the server certificate and is the CA client certificates are verified against), and `curl` as the device:
 * mutual TLS as a device speaks it. curl verifies the server by the FleetD CA (never -k).
 */
import { execFile } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { ManualClock } from '../../src/core/clock.js';
import { hashSecret, newSecret } from '../../src/registry/credentials.js';
import type { DeviceAuthMode, EnrollmentMode } from '../../src/server/context.js';
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
  options: { deviceAuth?: DeviceAuthMode; deviceCertValidityMs?: number; enrollment?: EnrollmentMode } = {},
): Promise<MtlsServer> {
  const dataDir = tempDir();
  const dir = tempDir('fleetd-mtls-');
  const clock = new ManualClock(Date.now());
  const adminToken = newSecret('admin');
  await store.createApiToken(
    { id: 'tok_admin', name: 'admin', role: 'admin', createdAt: clock.now() },
    hashSecret(adminToken),
  );
  // The real listener (--tls auto): the FleetD CA in <data>/pki issues its certificate and is the client CA.
  const { app } = await createServer({
    dataDir,
    store,
    clock,
    logLevel: 'silent',
    host: '127.0.0.1',
    tls: { kind: 'auto' },
    ...options,
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  const caFile = join(dir, 'ca.crt');
  copyFileSync(join(dataDir, 'pki', 'ca.crt'), caFile);
  return {
    url: `https://127.0.0.1:${port}`,
    app,
    store,
    clock,
    dir,
    caFile,
    admin: { authorization: `Bearer ${adminToken}` },
    close: () => app.close(),
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
