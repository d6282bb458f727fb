import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadPublicKey, verifyRelease } from '../agent/verify.js';
import { canonicalManifest } from '../core/manifest.js';
import {
  generateKeyPair,
  keyId,
  readPrivateKeyFile,
  readPublicKeyFile,
  signManifest,
  verifyManifest,
  writeKeyPairFiles,
} from './signing.js';

// Any text will do: signing covers bytes, not meaning. Non-ASCII checks that UTF-8 bytes are what is signed.
const MANIFEST =
  '{"name":"pos-firmware-ü","version":"2.3.0","type":"firmware","hardware":["pos-x200"],"size":3,' +
  `"sha256":"${'ab'.repeat(32)}","created":"2024-10-20T14:23:00.000Z","allow_downgrade":false}`;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fleetd-signing-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

/** Runs the real openssl binary; a missing one fails the test with a clear reason, never skips it. */
function openssl(args: string[]) {
  const result = spawnSync('openssl', args, { encoding: 'utf8' });
  if (result.error) {
    throw new Error(`these tests need the openssl command line on PATH (${result.error.message})`);
  }
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe('signing', () => {
  it('signs and verifies; a changed byte, another key or a mangled signature fails', () => {
    const { publicKeyPem, privateKeyPem } = generateKeyPair();
    expect(publicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    const signature = signManifest(MANIFEST, privateKeyPem);
    expect(Buffer.from(signature, 'base64')).toHaveLength(64);
    expect(verifyManifest(MANIFEST, signature, publicKeyPem)).toBe(true);

    expect(verifyManifest(MANIFEST.replace('2.3.0', '2.3.1'), signature, publicKeyPem)).toBe(false);
    expect(verifyManifest(`${MANIFEST} `, signature, publicKeyPem)).toBe(false);
    expect(verifyManifest(MANIFEST, signature, generateKeyPair().publicKeyPem)).toBe(false);
    const flipped = Buffer.from(signature, 'base64');
    flipped[0]! ^= 1;
    expect(verifyManifest(MANIFEST, flipped.toString('base64'), publicKeyPem)).toBe(false);
    for (const bad of ['', 'not base64!', signature.slice(0, -4), `${signature}AAAA`, ` ${signature}`]) {
      expect(verifyManifest(MANIFEST, bad, publicKeyPem)).toBe(false);
    }
  });

  it('names keys by a stable id', () => {
    const { publicKeyPem, privateKeyPem } = generateKeyPair();
    expect(keyId(publicKeyPem)).toMatch(/^[0-9a-f]{16}$/);
    expect(keyId(`\n${publicKeyPem}`)).toBe(keyId(publicKeyPem));
    expect(keyId(generateKeyPair().publicKeyPem)).not.toBe(keyId(publicKeyPem));
    expect(() => keyId(privateKeyPem)).toThrow(/is a private key/);
  });

  it('refuses keys that are not Ed25519, or the wrong half', () => {
    const rsa = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    const ed = generateKeyPair();
    expect(() => signManifest(MANIFEST, rsa.privateKey)).toThrow(
      'the signing key is not an Ed25519 private key',
    );
    expect(() => signManifest(MANIFEST, ed.publicKeyPem)).toThrow(
      /not an Ed25519 private key \(found a public key\)/,
    );
    expect(() => signManifest(MANIFEST, 'garbage')).toThrow('the signing key is not a PEM private key');
    expect(() => verifyManifest(MANIFEST, 'x', rsa.publicKey)).toThrow(
      /not an Ed25519 public key \(found rsa public key\)/,
    );
  });

  it('writes and reads key files, with clear errors', async () => {
    const written = await writeKeyPairFiles(dir);
    expect((await stat(join(dir, 'signing.key'))).mode & 0o777).toBe(0o600);
    const privateKey = await readPrivateKeyFile(join(dir, 'signing.key'));
    const publicKey = await readPublicKeyFile(join(dir, 'signing.pub'));
    expect(keyId(publicKey)).toBe(written.keyId);
    expect(verifyManifest(MANIFEST, signManifest(MANIFEST, privateKey), publicKey)).toBe(true);

    await expect(writeKeyPairFiles(dir)).rejects.toThrow(/exists already/);
    expect(await readFile(join(dir, 'signing.key'), 'utf8')).toBe(written.privateKeyPem);
    const pub = join(dir, 'signing.pub');
    await expect(readPrivateKeyFile(pub)).rejects.toThrow(`key file ${pub} is not an Ed25519 private key`);
    await expect(readPublicKeyFile(join(dir, 'signing.key'))).rejects.toThrow(/is a private key/);
    await expect(readPrivateKeyFile(join(dir, 'missing'))).rejects.toThrow(
      /missing cannot be read \(ENOENT\)/,
    );
    const rsaFile = join(dir, 'rsa.key');
    await writeFile(
      rsaFile,
      generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }),
    );
    await expect(readPrivateKeyFile(rsaFile)).rejects.toThrow(
      `key file ${rsaFile} is not an Ed25519 private key (found rsa private key)`,
    );
  });
});

describe('interoperability with the FleetD agent', () => {
  it('the agent accepts a canonical manifest signed here, and refuses it with another key', () => {
    const { publicKeyPem, privateKeyPem } = generateKeyPair();
    const manifest = canonicalManifest({
      name: 'pos-firmware',
      version: '2.3.0',
      type: 'firmware',
      hardware: ['pos-x200'],
      size: 3,
      sha256: 'ab'.repeat(32),
      created: Date.UTC(2024, 9, 20),
    });
    const signature = signManifest(manifest, privateKeyPem);
    const ctx = { hardwareType: 'pos-x200', installedVersion: '2.1.0' };
    expect(
      verifyRelease(manifest, signature, { ...ctx, publicKey: loadPublicKey(publicKeyPem) }),
    ).toMatchObject({
      ok: true,
      value: { version: '2.3.0', hardware: ['pos-x200'] },
    });
    const other = loadPublicKey(generateKeyPair().publicKeyPem);
    expect(verifyRelease(manifest, signature, { ...ctx, publicKey: other })).toEqual({
      ok: false,
      reason: 'signature mismatch',
    });
  });
});

describe('interoperability with the openssl command line', () => {
  const files = async (manifest: string, signature: string, publicKeyPem: string) => {
    await writeFile(join(dir, 'manifest.json'), manifest);
    await writeFile(join(dir, 'manifest.sig'), Buffer.from(signature, 'base64')); // raw 64 bytes
    await writeFile(join(dir, 'signing.pub'), publicKeyPem);
  };
  const verifyArgs = () => [
    'pkeyutl',
    '-verify',
    '-pubin',
    '-inkey',
    join(dir, 'signing.pub'),
    '-rawin',
    '-in',
    join(dir, 'manifest.json'),
    '-sigfile',
    join(dir, 'manifest.sig'),
  ];

  it('openssl verifies what signManifest signed', async () => {
    const { publicKeyPem, privateKeyPem } = generateKeyPair();
    await files(MANIFEST, signManifest(MANIFEST, privateKeyPem), publicKeyPem);
    const result = openssl(verifyArgs());
    expect(result.output).toContain('Signature Verified Successfully');
    expect(result.status).toBe(0);
  });

  it('openssl rejects a manifest with one byte changed', async () => {
    const { publicKeyPem, privateKeyPem } = generateKeyPair();
    await files(
      MANIFEST.replace('"size":3', '"size":4'),
      signManifest(MANIFEST, privateKeyPem),
      publicKeyPem,
    );
    const result = openssl(verifyArgs());
    expect(result.output).toContain('Signature Verification Failure');
    expect(result.status).not.toBe(0);
  });

  it('keys and signatures made by openssl work here', async () => {
    const key = join(dir, 'signing.key');
    expect(openssl(['genpkey', '-algorithm', 'ed25519', '-out', key]).status).toBe(0);
    expect(openssl(['pkey', '-in', key, '-pubout', '-out', join(dir, 'signing.pub')]).status).toBe(0);
    await writeFile(join(dir, 'manifest.json'), MANIFEST);
    const sign = [
      'pkeyutl',
      '-sign',
      '-inkey',
      key,
      '-rawin',
      '-in',
      join(dir, 'manifest.json'),
      '-out',
      join(dir, 'manifest.sig'),
    ];
    expect(openssl(sign).status).toBe(0);
    const signature = (await readFile(join(dir, 'manifest.sig'))).toString('base64');
    const publicKey = await readPublicKeyFile(join(dir, 'signing.pub'));
    expect(verifyManifest(MANIFEST, signature, publicKey)).toBe(true);
    expect(signManifest(MANIFEST, await readPrivateKeyFile(key))).toBe(signature); // Ed25519 is deterministic
  });
});
