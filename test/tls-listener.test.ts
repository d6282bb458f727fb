/**
 * TLS for the HTTP listener, in-process: when the auto-made server certificate is made again, the client CAs
 * changed at run time, the public CA route, and the refusal of plain HTTP off loopback. The command-line side
 * (the banner, curl, the CLI) is in tls-cli.test.ts.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadOrCreateAuthority } from '../src/pki/authority.js';
import { certificateNames, describeCertificate } from '../src/pki/describe.js';
import { type RunningServer, startServer } from '../src/server/serve.js';
import { prepareTls } from '../src/server/tls.js';
import { tempDir } from './support/processes.js';

const DAY = 86_400_000;
const running: RunningServer[] = [];
afterEach(async () => {
  for (const server of running.splice(0)) await server.close();
});

/** openssl s_client against a server in this process: spawned, not run synchronously, so the server can answer. */
function sClient(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', ['s_client', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => {
      output += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      output += c.toString();
    });
    child.once('error', (e) =>
      reject(new Error(`these tests need the openssl command line on PATH (${e.message})`)),
    );
    child.once('exit', (code) => resolve({ code, output }));
  });
}

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

  it('refuses a --tls-key that is not the key of --tls-cert, naming both files', async () => {
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
  });
});
