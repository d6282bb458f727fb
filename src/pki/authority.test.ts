import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { authorityFromPem, issueServerCertificate, loadOrCreateAuthority } from './authority.js';
import { describeCertificate } from './describe.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fleetd-pki-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

/** Runs the real openssl binary; a missing one fails the test with a clear reason, never skips it. */
function openssl(args: string[]) {
  const result = spawnSync('openssl', args, { encoding: 'utf8' });
  if (result.error)
    throw new Error(`these tests need the openssl command line on PATH (${result.error.message})`);
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

const NOW = new Date('2026-03-01T10:00:00Z');

describe('the FleetD CA', () => {
  it('is made once in the folder (key 0600) and loaded again with the same fingerprint', async () => {
    const made = await loadOrCreateAuthority(join(dir, 'pki'), NOW);
    expect((await stat(join(dir, 'pki', 'ca.key'))).mode & 0o777).toBe(0o600);
    const key = await readFile(join(dir, 'pki', 'ca.key'), 'utf8');
    expect(key).toContain('-----BEGIN PRIVATE KEY-----');
    const again = await loadOrCreateAuthority(join(dir, 'pki'), new Date(NOW.getTime() + 86_400_000));
    expect(again.fingerprint).toBe(made.fingerprint);
    expect(again.certificatePem).toBe(made.certificatePem);

    // openssl reads it as a P-256 CA whose fingerprint is ours.
    const text = openssl([
      'x509',
      '-in',
      join(dir, 'pki', 'ca.crt'),
      '-noout',
      '-text',
      '-fingerprint',
      '-sha256',
    ]);
    expect(text.status).toBe(0);
    expect(text.output).toContain('CA:TRUE');
    expect(text.output).toContain('NIST CURVE: P-256');
    const openSslFingerprint = /sha256 Fingerprint=([0-9A-F:]+)/i.exec(text.output)?.[1];
    expect(openSslFingerprint?.replaceAll(':', '').toLowerCase()).toBe(made.fingerprint);
    const described = describeCertificate(made.certificatePem);
    expect(described.isCa).toBe(true);
    expect(described.notAfter.getTime() - NOW.getTime()).toBeGreaterThan(9 * 365 * 86_400_000);
  });

  it('refuses a key that is not the certificate’s, and a folder with only one of the two files', async () => {
    const one = await loadOrCreateAuthority(join(dir, 'one'), NOW);
    await loadOrCreateAuthority(join(dir, 'two'), NOW);
    const otherKey = await readFile(join(dir, 'two', 'ca.key'), 'utf8');
    await expect(authorityFromPem(one.certificatePem, otherKey)).rejects.toMatchObject({
      code: 'CERTIFICATE_INVALID',
    });
    await expect(authorityFromPem(one.certificatePem, 'not a key')).rejects.toMatchObject({
      code: 'CERTIFICATE_INVALID',
    });
    await rm(join(dir, 'one', 'ca.key'));
    await expect(loadOrCreateAuthority(join(dir, 'one'), NOW)).rejects.toMatchObject({
      code: 'CERTIFICATE_INVALID',
    });
  });

  it('issues a server certificate that openssl verifies for each DNS name and IP address', async () => {
    const ca = await loadOrCreateAuthority(join(dir, 'pki'), new Date());
    const server = await issueServerCertificate(
      ca,
      ['fleet.example.com', 'localhost', '127.0.0.1', '::1'],
      new Date(),
    );
    const certFile = join(dir, 'server.crt');
    await writeFile(certFile, server.certificatePem);
    const caFile = join(dir, 'pki', 'ca.crt');
    for (const check of [
      ['-verify_hostname', 'fleet.example.com'],
      ['-verify_hostname', 'localhost'],
      ['-verify_ip', '127.0.0.1'],
      ['-verify_ip', '::1'],
    ]) {
      const verified = openssl(['verify', '-CAfile', caFile, '-purpose', 'sslserver', ...check, certFile]);
      expect(verified.output).toContain(': OK');
      expect(verified.status).toBe(0);
    }
    const wrongName = openssl([
      'verify',
      '-CAfile',
      caFile,
      '-verify_hostname',
      'other.example.com',
      certFile,
    ]);
    expect(wrongName.status).not.toBe(0);
    // Not a client certificate: a device could not present the server's.
    const asClient = openssl(['verify', '-CAfile', caFile, '-purpose', 'sslclient', certFile]);
    expect(asClient.status).not.toBe(0);
    // The key is the certificate's.
    const keyFile = join(dir, 'server.key');
    await writeFile(keyFile, server.privateKeyPem);
    const fromKey = openssl(['pkey', '-in', keyFile, '-pubout']).output;
    const fromCert = openssl(['x509', '-in', certFile, '-noout', '-pubkey']).output;
    expect(fromKey).toBe(fromCert);
  });

  it('is made once when several parts of a server ask for it at the same time', async () => {
    const all = await Promise.all([1, 2, 3].map(() => loadOrCreateAuthority(join(dir, 'pki'), NOW)));
    expect(new Set(all.map((ca) => ca.fingerprint)).size).toBe(1);
    const onDisk = await authorityFromPem(
      await readFile(join(dir, 'pki', 'ca.crt'), 'utf8'),
      await readFile(join(dir, 'pki', 'ca.key'), 'utf8'),
    );
    expect(onDisk.fingerprint).toBe(all[0]?.fingerprint);
  });
});
