/** The agent's device key and CSR, checked by the real `openssl`; the identity files and their modes. */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IdentityFiles, KEY_ALGORITHMS, makeKeyAndCsr } from '../src/agent/identity.js';
import { opensslCa } from './support/openssl-ca.js';

const tempDir = () => mkdtemp(join(tmpdir(), 'fleetd-identity-'));

describe('makeKeyAndCsr', () => {
  for (const algorithm of KEY_ALGORITHMS) {
    it(`makes a ${algorithm} key and a CSR that openssl verifies, subject CN = the device id`, async () => {
      const { keyPem, csrPem } = await makeKeyAndCsr('pos-nyc-001', algorithm);
      const dir = await tempDir();
      await writeFile(join(dir, 'req.pem'), csrPem);
      await writeFile(join(dir, 'key.pem'), keyPem);
      const out = execFileSync(
        'openssl',
        ['req', '-in', join(dir, 'req.pem'), '-verify', '-noout', '-subject', '-nameopt', 'RFC2253'],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
      );
      expect(out).toContain('subject=CN=pos-nyc-001');
      // The request's public key is the key's: the CSR asks for a certificate of this very key.
      const fromCsr = execFileSync('openssl', ['req', '-in', join(dir, 'req.pem'), '-noout', '-pubkey']);
      const fromKey = execFileSync('openssl', ['pkey', '-in', join(dir, 'key.pem'), '-pubout']);
      expect(fromCsr.toString()).toBe(fromKey.toString());
      const kind = execFileSync('openssl', ['pkey', '-in', join(dir, 'key.pem'), '-noout', '-text']);
      expect(kind.toString()).toMatch(algorithm === 'ed25519' ? /ED25519/ : /prime256v1|P-256/);
    });
  }

  it('a device id that looks like a distinguished name stays one CN value', async () => {
    const { csrPem } = await makeKeyAndCsr('a,O=evil');
    const dir = await tempDir();
    await writeFile(join(dir, 'req.pem'), csrPem);
    const out = execFileSync(
      'openssl',
      ['req', '-in', join(dir, 'req.pem'), '-noout', '-subject', '-nameopt', 'RFC2253'],
      {
        encoding: 'utf8',
      },
    );
    expect(out.trim()).toBe('subject=CN=a\\,O=evil');
  });
});

describe('IdentityFiles', () => {
  it('keeps certificate and key in one 0600 file and reads the validity from the certificate', async () => {
    const dir = await tempDir();
    const files = new IdentityFiles(dir);
    expect(await files.read()).toBeUndefined();
    const { keyPem, csrPem } = await makeKeyAndCsr('dev-1');
    const certificatePem = opensslCa().issue(csrPem, { days: 90 });
    await files.write(certificatePem, keyPem, Date.now());
    expect((await stat(files.certificatePath)).mode & 0o777).toBe(0o600);
    const read = await files.read();
    expect(read?.keyPem.trim()).toBe(keyPem.trim());
    expect(read!.notAfter - read!.notBefore).toBe(90 * 86_400_000);
    // openssl reads the same file as certificate and key: curl --cert and s_client -cert work with it.
    const subject = execFileSync('openssl', ['x509', '-in', files.certificatePath, '-noout', '-subject']);
    expect(subject.toString()).toMatch(/CN\s*=\s*dev-1/);
    execFileSync('openssl', ['pkey', '-in', files.certificatePath, '-noout']);
  });

  it('refuses to save something that is not a certificate, leaving the old pair in place', async () => {
    const dir = await tempDir();
    const files = new IdentityFiles(dir);
    const { keyPem, csrPem } = await makeKeyAndCsr('dev-1');
    await files.write(opensslCa().issue(csrPem), keyPem, Date.now());
    const before = await readFile(files.certificatePath, 'utf8');
    await expect(
      files.write('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', keyPem, 0),
    ).rejects.toThrow();
    await expect(files.writeCa('not a certificate')).rejects.toThrow();
    expect(await readFile(files.certificatePath, 'utf8')).toBe(before);
    expect(await files.readCa()).toBeUndefined();
  });
});
