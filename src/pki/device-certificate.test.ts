import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetError } from '../core/errors.js';
import { type Authority, loadOrCreateAuthority } from './authority.js';
import { createDeviceCsr } from './csr.js';
import { describeCertificate } from './describe.js';
import { issueDeviceCertificate } from './device-certificate.js';

let dir: string;
let ca: Authority;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fleetd-devcert-'));
  ca = await loadOrCreateAuthority(join(dir, 'pki'), new Date());
});
afterAll(() => rm(dir, { recursive: true, force: true }));

function openssl(args: string[]) {
  const result = spawnSync('openssl', args, { encoding: 'utf8' });
  if (result.error)
    throw new Error(`these tests need the openssl command line on PATH (${result.error.message})`);
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** A CSR made by openssl, as a device's own tooling would: its key stays in the test's folder. */
async function opensslCsr(name: string, keyArgs: string[], subject: string): Promise<string> {
  const csrFile = join(dir, `${name}.csr`);
  const made = openssl([
    'req',
    '-new',
    ...keyArgs,
    '-nodes',
    '-keyout',
    join(dir, `${name}.key`),
    '-subj',
    subject,
    '-out',
    csrFile,
  ]);
  expect(made.status, made.output).toBe(0);
  return readFile(csrFile, 'utf8');
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
const ED25519 = ['-newkey', 'ed25519'];
const DAY = 86_400_000;

describe('device certificates', () => {
  for (const [kind, keyArgs] of [
    ['ECDSA P-256', EC],
    ['Ed25519', ED25519],
  ] as const) {
    it(`issues from an openssl ${kind} CSR a client certificate openssl verifies against the CA`, async () => {
      const name = kind.replace(/\W/g, '');
      const csr = await opensslCsr(name, [...keyArgs], '/CN=pos-0042');
      const now = new Date();
      const issued = await issueDeviceCertificate(ca, csr, 'pos-0042', { now, validityMs: 90 * DAY });
      const certFile = join(dir, `${name}.crt`);
      await writeFile(certFile, issued.certificatePem);
      const verified = openssl([
        'verify',
        '-CAfile',
        join(dir, 'pki', 'ca.crt'),
        '-purpose',
        'sslclient',
        certFile,
      ]);
      expect(verified.output).toContain(': OK');
      expect(verified.status).toBe(0);
      // Not a server certificate.
      expect(
        openssl(['verify', '-CAfile', join(dir, 'pki', 'ca.crt'), '-purpose', 'sslserver', certFile]).status,
      ).not.toBe(0);

      const fields = openssl([
        'x509',
        '-in',
        certFile,
        '-noout',
        '-subject',
        '-serial',
        '-fingerprint',
        '-sha256',
      ]);
      expect(fields.output).toMatch(/subject=CN ?= ?pos-0042/);
      expect(fields.output).toContain(`serial=${issued.serial.toUpperCase()}`);
      expect(issued.serial).toMatch(/^[0-9a-f]{32}$/);
      expect(Number.parseInt(issued.serial.slice(0, 2), 16)).toBeLessThan(0x80);
      const fingerprint = /Fingerprint=([0-9A-F:]+)/i.exec(fields.output)?.[1];
      expect(fingerprint?.replaceAll(':', '').toLowerCase()).toBe(issued.fingerprint);
      // The device's key is in the certificate: the certificate's public key is the one openssl made.
      const fromKey = openssl(['pkey', '-in', join(dir, `${name}.key`), '-pubout']).output;
      expect(openssl(['x509', '-in', certFile, '-noout', '-pubkey']).output).toBe(fromKey);

      expect(issued.notBefore.getTime()).toBe(Math.floor((now.getTime() - 5 * 60_000) / 1000) * 1000);
      expect(issued.notAfter.getTime() - issued.notBefore.getTime()).toBeGreaterThan(90 * DAY);
      expect(describeCertificate(issued.certificatePem)).toMatchObject({
        subjectCommonName: 'pos-0042',
        serial: issued.serial,
        fingerprint: issued.fingerprint,
        isCa: false,
      });
    });
  }

  it('two certificates for the same device have different serials', async () => {
    const csr = await opensslCsr('twice', EC, '/CN=pos-0043');
    const opts = { now: new Date(), validityMs: DAY };
    const a = await issueDeviceCertificate(ca, csr, 'pos-0043', opts);
    const b = await issueDeviceCertificate(ca, csr, 'pos-0043', opts);
    expect(a.serial).not.toBe(b.serial);
  });

  it('refuses a CSR that names another device, or names none', async () => {
    const other = await opensslCsr('other', EC, '/CN=pos-0099');
    await expect(
      issueDeviceCertificate(ca, other, 'pos-0042', { now: new Date(), validityMs: DAY }),
    ).rejects.toMatchObject({ code: 'CSR_DEVICE_MISMATCH', message: expect.stringContaining('pos-0099') });
    const noCn = await opensslCsr('nocn', EC, '/O=Acme');
    await expect(
      issueDeviceCertificate(ca, noCn, 'pos-0042', { now: new Date(), validityMs: DAY }),
    ).rejects.toMatchObject({ code: 'CSR_DEVICE_MISMATCH' });
  });

  it('refuses garbage, a certificate in place of a CSR, a tampered CSR and an RSA key as CSR_INVALID', async () => {
    const opts = { now: new Date(), validityMs: DAY };
    const good = await opensslCsr('tamper', EC, '/CN=pos-0042');
    // Another subject name of the same length inside the signed part: the signature no longer covers it.
    const der = Buffer.from(good.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const at = der.indexOf(Buffer.from('pos-0042'));
    expect(at).toBeGreaterThan(0);
    der.write('pos-0666', at);
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    const rsa = await opensslCsr('rsa', ['-newkey', 'rsa:2048'], '/CN=pos-0042');
    for (const bad of [
      'garbage',
      '-----BEGIN CERTIFICATE REQUEST-----\nbm90IGEgY3Ny\n-----END CERTIFICATE REQUEST-----\n',
      ca.certificatePem,
      rsa,
    ]) {
      await expect(issueDeviceCertificate(ca, bad, 'pos-0042', opts)).rejects.toMatchObject({
        code: 'CSR_INVALID',
      });
    }
    await expect(issueDeviceCertificate(ca, tampered, 'pos-0666', opts)).rejects.toMatchObject({
      code: 'CSR_INVALID',
    });
  });
});

describe('a CSR made by createDeviceCsr', () => {
  for (const keyType of ['ecdsa-p256', 'ed25519'] as const) {
    it(`(${keyType}) is accepted by openssl req -verify and issues a certificate for its own key`, async () => {
      const { csrPem, privateKeyPem } = await createDeviceCsr('pos-0100', keyType);
      const csrFile = join(dir, `own-${keyType}.csr`);
      const keyFile = join(dir, `own-${keyType}.key`);
      await writeFile(csrFile, csrPem);
      await writeFile(keyFile, privateKeyPem);
      const checked = openssl(['req', '-in', csrFile, '-verify', '-noout', '-subject']);
      expect(checked.output).toMatch(/verify OK|Certificate request self-signature verify OK/);
      expect(checked.output).toMatch(/subject=CN ?= ?pos-0100/);
      const issued = await issueDeviceCertificate(ca, csrPem, 'pos-0100', {
        now: new Date(),
        validityMs: DAY,
      });
      const certFile = join(dir, `own-${keyType}.crt`);
      await writeFile(certFile, issued.certificatePem);
      expect(openssl(['x509', '-in', certFile, '-noout', '-pubkey']).output).toBe(
        openssl(['pkey', '-in', keyFile, '-pubout']).output,
      );
    });
  }
});

describe('any input as a CSR', () => {
  it('refuses a CSR whose key names an unknown curve with CSR_INVALID (a case the property found)', async () => {
    // One byte of the curve's OID changed: the request parses, its key's parameters do not.
    const damaged =
      '-----BEGIN CERTIFICATE REQUEST-----\nMIHNMHUCAQAwEzERMA8GA1UEAxMIcG9zLTAwNDIwWTATBgcqhkjOPQIBBwgqhkjOPQMBBwNCAAQW4cg8g705uDkLZbCV0M6mg9xkl1+N/xbSI4m+/HYCD+0wW2Jnd0lXW+Ggct24Uv5aty82y7QDEGsYdD3zMpmPoAAwCgYIKoZIzj0EAwIDSAAwRQIgBPadA5UEUDgAVXV8YpEepFcjTrfRlhdQ+kU2WP9SdagCIQDs2Fgz4x4DwhYCS42Tn3oBA2SB+18pXG8wT0k2Cd36Yw==\n-----END CERTIFICATE REQUEST-----\n';
    await expect(
      issueDeviceCertificate(ca, damaged, 'pos-0042', { now: new Date(), validityMs: DAY }),
    ).rejects.toMatchObject({ code: 'CSR_INVALID' });
  });

  it('is refused with CSR_INVALID or CSR_DEVICE_MISMATCH, never another error; what is issued names the device', async () => {
    const { csrPem } = await createDeviceCsr('pos-0042');
    const der = Buffer.from(csrPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const armour = (bytes: Uint8Array) =>
      `-----BEGIN CERTIFICATE REQUEST-----\n${Buffer.from(bytes).toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    const input = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.uint8Array({ maxLength: 400 }).map(armour),
      // A real CSR with one byte changed: the damage a transfer or an attacker could do.
      fc.tuple(fc.nat({ max: der.length - 1 }), fc.integer({ min: 1, max: 255 })).map(([at, xor]) => {
        const changed = Buffer.from(der);
        changed[at] = (changed[at] ?? 0) ^ xor;
        return armour(changed);
      }),
    );
    await fc.assert(
      fc.asyncProperty(input, async (pem) => {
        try {
          const issued = await issueDeviceCertificate(ca, pem, 'pos-0042', {
            now: new Date(),
            validityMs: DAY,
          });
          expect(describeCertificate(issued.certificatePem).subjectCommonName).toBe('pos-0042');
        } catch (error) {
          expect(error).toBeInstanceOf(FleetError);
          expect(['CSR_INVALID', 'CSR_DEVICE_MISMATCH']).toContain((error as FleetError).code);
        }
      }),
      { numRuns: 300 },
    );
  });
});
