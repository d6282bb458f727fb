/**
 * TLS for the HTTP listener, in-process: when the auto-made server certificate is made again, the client CAs
 * changed at run time, the public CA route, and the refusal of plain HTTP off loopback. The command-line side
 * (the banner, curl, the CLI) is in tls-cli.test.ts.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { type Authority, loadOrCreateAuthority } from '../src/pki/authority.js';
import { createDeviceCsr } from '../src/pki/csr.js';
import { certificateNames, describeCertificate } from '../src/pki/describe.js';
import { issueDeviceCertificate } from '../src/pki/device-certificate.js';
import { createServer, type RunningServer, type ServerParts, startServer } from '../src/server/serve.js';
import { prepareTls } from '../src/server/tls.js';
import { tempDir } from './support/processes.js';

const DAY = 86_400_000;
const running: RunningServer[] = [];
const idle: ServerParts[] = [];
afterEach(async () => {
  for (const server of running.splice(0)) await server.close();
  for (const parts of idle.splice(0)) {
    await parts.app.close();
    await parts.store.close();
  }
});

/** A command against a server in this process: spawned, not run synchronously, so the server can answer. */
function command(name: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(name, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => {
      output += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      output += c.toString();
    });
    child.once('error', (e) => reject(new Error(`these tests need ${name} on PATH (${e.message})`)));
    child.once('exit', (code) => resolve({ code, output }));
  });
}

const sClient = (args: string[]) => command('openssl', ['s_client', ...args]);

/** The CA names a TLS server asks client certificates from, as openssl s_client prints them. */
function acceptedClientCas(output: string): string[] {
  const block =
    /Acceptable client certificate CA names\n([\s\S]*?)\n(?:Requested|Client Certificate Types|---)/.exec(
      output,
    );
  return block?.[1]?.split('\n').filter((l) => l.trim() !== '') ?? [];
}

describe('the auto-made server certificate', () => {
  it('is kept while its names, its CA and its time fit, and made again when one does not', async () => {
    const data = tempDir();
    const now = new Date();
    const first = await prepareTls(
      { kind: 'auto', extraNames: ['fleet.example.test'] },
      data,
      '127.0.0.1',
      now,
    );
    const certFile = join(data, 'pki', 'server.crt');
    const made = readFileSync(certFile, 'utf8');
    expect(first.https.cert).toBe(made);
    expect(certificateNames(made)).toEqual(
      expect.arrayContaining(['fleet.example.test', 'localhost', '127.0.0.1']),
    );
    expect(
      spawnSync('stat', ['-c', '%a', join(data, 'pki', 'server.key')], { encoding: 'utf8' }).stdout.trim(),
    ).toBe('600');

    await prepareTls(
      { kind: 'auto', extraNames: ['fleet.example.test'] },
      data,
      '127.0.0.1',
      new Date(now.getTime() + DAY),
    );
    expect(readFileSync(certFile, 'utf8')).toBe(made);

    // A new name: made again, for every name.
    await prepareTls(
      { kind: 'auto', extraNames: ['fleet.example.test', 'edge.example.test'] },
      data,
      '127.0.0.1',
      now,
    );
    const renamed = readFileSync(certFile, 'utf8');
    expect(renamed).not.toBe(made);
    expect(certificateNames(renamed)).toEqual(
      expect.arrayContaining(['fleet.example.test', 'edge.example.test']),
    );

    // Less than 30 days left: made again.
    const notAfter = describeCertificate(renamed).notAfter.getTime();
    const late = new Date(notAfter - 20 * DAY);
    await prepareTls(
      { kind: 'auto', extraNames: ['fleet.example.test', 'edge.example.test'] },
      data,
      '127.0.0.1',
      late,
    );
    const renewed = readFileSync(certFile, 'utf8');
    expect(describeCertificate(renewed).notAfter.getTime()).toBeGreaterThan(notAfter);

    // Another CA (the old one moved away): made again by the new CA, which openssl verifies it with.
    rmSync(join(data, 'pki', 'ca.crt'));
    rmSync(join(data, 'pki', 'ca.key'));
    await prepareTls(
      { kind: 'auto', extraNames: ['fleet.example.test', 'edge.example.test'] },
      data,
      '127.0.0.1',
      now,
    );
    const reissued = readFileSync(certFile, 'utf8');
    expect(reissued).not.toBe(renewed);
    const verified = spawnSync('openssl', ['verify', '-CAfile', join(data, 'pki', 'ca.crt'), certFile], {
      encoding: 'utf8',
    });
    expect(verified.stdout).toContain(': OK');
  });
});

describe('the TLS listener', () => {
  it('asks client certificates from the FleetD CA, and from factory CAs set at run time without a restart', async () => {
    const data = tempDir();
    const server = await startServer({ port: 0, dataDir: data, logLevel: 'silent', tls: { kind: 'auto' } });
    running.push(server);
    expect(server.url).toMatch(/^https:\/\//);
    const address = server.url.replace('https://', '');
    const caFile = join(data, 'pki', 'ca.crt');
    const connect = ['-connect', address, '-CAfile', caFile, '-verify_return_error'];

    const before = await sClient(connect);
    expect(before.output).toContain('Verify return code: 0 (ok)');
    const fleetCa = describeCertificate(readFileSync(caFile, 'utf8')).subjectCommonName!;
    expect(acceptedClientCas(before.output).join('\n')).toContain(fleetCa);
    expect(acceptedClientCas(before.output)).toHaveLength(1);

    const factory = await loadOrCreateAuthority(join(tempDir(), 'factory'), new Date());
    server.tls!.setClientCas([factory.certificatePem]);
    const after = await sClient(connect);
    const names = acceptedClientCas(after.output).join('\n');
    expect(names).toContain(fleetCa);
    expect(names).toContain(describeCertificate(factory.certificatePem).subjectCommonName!);
    // The listener's own certificate is unchanged by it.
    expect(after.output).toContain('Verify return code: 0 (ok)');

    server.tls!.setClientCas([]);
    expect(acceptedClientCas((await sClient(connect)).output)).toHaveLength(1);
  });

  it('publishes the FleetD CA at /api/v1/pki/ca without a token', async () => {
    const data = tempDir();
    const server = await startServer({ port: 0, dataDir: data, logLevel: 'silent', tls: { kind: 'auto' } });
    running.push(server);
    const reply = await server.app.inject({ method: 'GET', url: '/api/v1/pki/ca' });
    expect(reply.statusCode).toBe(200);
    expect(reply.headers['content-type']).toContain('application/x-pem-file');
    expect(reply.body).toBe(readFileSync(join(data, 'pki', 'ca.crt'), 'utf8'));
  });

  it('answers 404 with the error shape at /api/v1/pki/ca while there is no CA', async () => {
    const data = tempDir();
    const server = await startServer({ port: 0, dataDir: data, logLevel: 'silent' });
    running.push(server);
    expect(existsSync(join(data, 'pki', 'ca.crt'))).toBe(false);
    const reply = await server.app.inject({ method: 'GET', url: '/api/v1/pki/ca' });
    expect(reply.statusCode).toBe(404);
    expect(reply.json()).toEqual({
      error: { code: 'NOT_FOUND', message: expect.stringContaining('no FleetD CA') },
    });
  });

  it('refuses plain HTTP on an address other than loopback before opening anything', async () => {
    const data = join(tempDir(), 'never-made');
    await expect(
      startServer({ port: 0, host: '0.0.0.0', dataDir: data, logLevel: 'silent' }),
    ).rejects.toMatchObject({
      code: 'VALIDATION',
      message: expect.stringContaining('--insecure-http'),
    });
    expect(existsSync(data)).toBe(false);
  });

  it('refuses a --tls-key that is not the key of --tls-cert, or a --tls-cert that is no certificate, naming the files', async () => {
    const dir = tempDir();
    const one = await prepareTls({ kind: 'auto' }, join(dir, 'one'), '127.0.0.1', new Date());
    const two = await prepareTls({ kind: 'auto' }, join(dir, 'two'), '127.0.0.1', new Date());
    writeFileSync(join(dir, 'one.crt'), String(one.https.cert));
    writeFileSync(join(dir, 'two.key'), String(two.https.key));
    await expect(
      prepareTls(
        { kind: 'files', certFile: join(dir, 'one.crt'), keyFile: join(dir, 'two.key') },
        join(dir, 'three'),
        '127.0.0.1',
        new Date(),
      ),
    ).rejects.toMatchObject({
      code: 'VALIDATION',
      message: expect.stringMatching(/two\.key is not the key of .*one\.crt/),
    });
    await expect(
      prepareTls(
        { kind: 'files', certFile: join(dir, 'two.key'), keyFile: join(dir, 'two.key') },
        join(dir, 'three'),
        '127.0.0.1',
        new Date(),
      ),
    ).rejects.toMatchObject({
      code: 'VALIDATION',
      message: expect.stringMatching(/--tls-cert .*two\.key: expected a PEM certificate/),
    });
    expect(existsSync(join(dir, 'three'))).toBe(false); // refused before anything was made
  });

  it('serves a renewed certificate from the next handshake on, without a restart', async () => {
    const data = tempDir();
    const server = await startServer({ port: 0, dataDir: data, logLevel: 'silent', tls: { kind: 'auto' } });
    running.push(server);
    const address = server.url.replace('https://', '');
    const certFile = join(data, 'pki', 'server.crt');
    const first = readFileSync(certFile, 'utf8');
    const presented = async () => {
      const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(
        (await sClient(['-connect', address])).output,
      )?.[0];
      return describeCertificate(pem ?? 'none').fingerprint;
    };
    expect(await presented()).toBe(describeCertificate(first).fingerprint);

    expect(await server.tls!.renewIfDue(new Date(Date.now() + DAY))).toBe(false);
    const late = new Date(describeCertificate(first).notAfter.getTime() - 20 * DAY);
    expect(await server.tls!.renewIfDue(late)).toBe(true);
    const second = readFileSync(certFile, 'utf8');
    expect(second).not.toBe(first);
    expect(await presented()).toBe(describeCertificate(second).fingerprint);
  });
});

/** curl with a client certificate (`--cert`, `--key`) against a route that says what the TLS socket saw. */
async function whoami(url: string, ca: string, cert?: { certFile: string; keyFile: string }) {
  const args = [
    '-sS',
    '--fail',
    '--cacert',
    ca,
    ...(cert ? ['--cert', cert.certFile, '--key', cert.keyFile] : []),
  ];
  const result = await command('curl', [...args, `${url}/test/whoami`]);
  expect(result.code, result.output).toBe(0);
  return JSON.parse(result.output) as { authorized: boolean; cn: string | null };
}

/** A device key and its certificate from `ca`, written to files for curl. */
async function deviceFiles(ca: Authority, dir: string, deviceId: string) {
  const { csrPem, privateKeyPem } = await createDeviceCsr(deviceId);
  const issued = await issueDeviceCertificate(ca, csrPem, deviceId, { now: new Date(), validityMs: DAY });
  const certFile = join(dir, `${deviceId}.crt`);
  const keyFile = join(dir, `${deviceId}.key`);
  writeFileSync(certFile, issued.certificatePem);
  writeFileSync(keyFile, privateKeyPem, { mode: 0o600 });
  return { certFile, keyFile };
}

describe('the operator’s certificate files', () => {
  it('are served again once renewed in place, without a restart; a half-written pair is not taken', async () => {
    const dir = tempDir();
    const makePair = async (name: string) => {
      const tls = await prepareTls({ kind: 'auto' }, join(dir, name), '127.0.0.1', new Date());
      return { cert: String(tls.https.cert), key: String(tls.https.key) };
    };
    const first = await makePair('first');
    const certFile = join(dir, 'server.crt');
    const keyFile = join(dir, 'server.key');
    writeFileSync(certFile, first.cert);
    writeFileSync(keyFile, first.key);
    const server = await startServer({
      port: 0,
      dataDir: join(dir, 'data'),
      logLevel: 'silent',
      tls: { kind: 'files', certFile, keyFile },
    });
    running.push(server);
    const address = server.url.replace('https://', '');
    const presented = async () =>
      describeCertificate(
        /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(
          (await sClient(['-connect', address])).output,
        )?.[0] ?? 'none',
      ).fingerprint;
    expect(await presented()).toBe(describeCertificate(first.cert).fingerprint);
    expect(await server.tls!.renewIfDue(new Date())).toBe(false);

    const second = await makePair('second');
    writeFileSync(certFile, second.cert); // the key not yet: refused, the old pair still served
    await expect(server.tls!.renewIfDue(new Date())).rejects.toMatchObject({ code: 'VALIDATION' });
    expect(await presented()).toBe(describeCertificate(first.cert).fingerprint);
    writeFileSync(keyFile, second.key);
    expect(await server.tls!.renewIfDue(new Date())).toBe(true);
    expect(await presented()).toBe(describeCertificate(second.cert).fingerprint);
  });
});

describe('client certificates on the TLS listener', () => {
  it('reach the request’s TLS socket: verified against the FleetD CA and the client CAs set at run time', async () => {
    const data = tempDir();
    const parts = await createServer({ dataDir: data, logLevel: 'silent', tls: { kind: 'auto' } });
    idle.push(parts);
    // What device authentication reads: the socket of the request, as Node gives it.
    parts.app.get('/test/whoami', async (request) => {
      const socket = request.raw.socket as TLSSocket;
      return { authorized: socket.authorized, cn: socket.getPeerCertificate().subject?.CN ?? null };
    });
    const url = await parts.app.listen({ port: 0, host: '127.0.0.1' });
    const caFile = join(data, 'pki', 'ca.crt');

    expect(await whoami(url, caFile)).toEqual({ authorized: false, cn: null });
    const ours = await deviceFiles(parts.tls!.authority, data, 'pos-0042');
    expect(await whoami(url, caFile, ours)).toEqual({ authorized: true, cn: 'pos-0042' });

    // A manufacturer's CA: the handshake completes (the app decides), but the certificate is not verified ...
    const factory = await loadOrCreateAuthority(join(tempDir(), 'factory'), new Date());
    const theirs = await deviceFiles(factory, data, 'sensor-7');
    expect(await whoami(url, caFile, theirs)).toEqual({ authorized: false, cn: 'sensor-7' });
    // ... until that CA is trusted, from the next connection on.
    parts.tls!.setClientCas([factory.certificatePem]);
    expect(await whoami(url, caFile, theirs)).toEqual({ authorized: true, cn: 'sensor-7' });
    expect(await whoami(url, caFile, ours)).toEqual({ authorized: true, cn: 'pos-0042' });
  });
});
