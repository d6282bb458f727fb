/**
 * The device's X.509 identity: a private key made here and never sent anywhere, a PKCS#10 request (CSR)
 * naming the device id as its subject CN, and the certificate and CA the server answers with.
 *
 * On disk, in the state folder (docs/agent.md):
 *   device.pem   0600  the certificate followed by its private key: one file, replaced in one rename, so a
 *                      key and the certificate issued for it can never be separated by a crash mid-renewal
 *   ca.pem             the FleetD CA the agent trusts for the server's certificate
 */
// @peculiar/x509 resolves its parts through tsyringe, which needs the Reflect metadata polyfill loaded first.
import 'reflect-metadata';
import { KeyObject, webcrypto } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { isNotFound, writeFileAtomic } from './fsutil.js';

export type KeyAlgorithm = 'ecdsa-p256' | 'ed25519';
export const KEY_ALGORITHMS: readonly KeyAlgorithm[] = ['ecdsa-p256', 'ed25519'];

/** A key pair and the request that asks for a certificate of it. */
export interface KeyAndCsr {
  /** PKCS#8 PEM: stays on the device. */
  keyPem: string;
  csrPem: string;
}

/** What mutual TLS needs, with the validity read from the certificate itself (never from the server's JSON). */
export interface DeviceIdentity {
  certificatePem: string;
  keyPem: string;
  notBefore: number;
  notAfter: number;
  /** When the device saved it (the file's time): the renewal schedule counts from here (renewal.ts). */
  receivedAt: number;
}

const ALGORITHMS: Record<
  KeyAlgorithm,
  { key: webcrypto.EcKeyGenParams | webcrypto.Algorithm; sign: webcrypto.EcdsaParams | webcrypto.Algorithm }
> = {
  'ecdsa-p256': { key: { name: 'ECDSA', namedCurve: 'P-256' }, sign: { name: 'ECDSA', hash: 'SHA-256' } },
  ed25519: { key: { name: 'Ed25519' }, sign: { name: 'Ed25519' } },
};

/** A fresh key pair and a CSR signed with it whose subject is `CN=<deviceId>` and nothing else. */
export async function makeKeyAndCsr(
  deviceId: string,
  algorithm: KeyAlgorithm = 'ecdsa-p256',
): Promise<KeyAndCsr> {
  const { key, sign } = ALGORITHMS[algorithm];
  const keys = (await webcrypto.subtle.generateKey(key, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    // The JSON form, not "CN=…": a device id is never parsed as a distinguished name.
    { name: [{ CN: [deviceId] }], keys, signingAlgorithm: sign },
    webcrypto as unknown as Parameters<typeof x509.Pkcs10CertificateRequestGenerator.create>[1],
  );
  const keyPem = KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }).toString();
  return { keyPem, csrPem: csr.toString('pem') };
}

/** The validity of a PEM certificate; throws on anything that is not one. */
export function certificateValidity(certificatePem: string): { notBefore: number; notAfter: number } {
  const cert = new x509.X509Certificate(certificatePem);
  return { notBefore: cert.notBefore.getTime(), notAfter: cert.notAfter.getTime() };
}

/** The device's certificate, key and trusted CA in the state folder. */
export class IdentityFiles {
  constructor(private readonly root: string) {}

  get certificatePath(): string {
    return join(this.root, 'device.pem');
  }

  get caPath(): string {
    return join(this.root, 'ca.pem');
  }

  async read(): Promise<DeviceIdentity | undefined> {
    const text = await readOptional(this.certificatePath);
    if (text === undefined) return undefined;
    const certificatePem = pemBlocks(text, 'CERTIFICATE').join('');
    const keyPem = pemBlocks(text, 'PRIVATE KEY')[0];
    if (!certificatePem || !keyPem) throw new Error(`${this.certificatePath} holds no certificate and key`);
    const receivedAt = (await stat(this.certificatePath)).mtimeMs;
    return { certificatePem, keyPem, ...certificateValidity(certificatePem), receivedAt };
  }

  /** Checks the certificate, then replaces the old pair in one rename: readers see the old or the new pair. */
  async write(certificatePem: string, keyPem: string, receivedAt: number): Promise<DeviceIdentity> {
    const validity = certificateValidity(certificatePem);
    const body = `${certificatePem.trim()}\n${keyPem.trim()}\n`;
    await writeFileAtomic(this.certificatePath, body, 0o600);
    return { certificatePem, keyPem, ...validity, receivedAt };
  }

  readCa(): Promise<string | undefined> {
    return readOptional(this.caPath);
  }

  async writeCa(caPem: string): Promise<void> {
    new x509.X509Certificate(caPem); // throws on anything that is not a certificate
    await writeFileAtomic(this.caPath, `${caPem.trim()}\n`, 0o644);
  }
}

/** Each `-----BEGIN <label>-----` block of `text`, with its armour; for keys any "… PRIVATE KEY" label. */
export function pemBlocks(text: string, label: 'CERTIFICATE' | 'PRIVATE KEY'): string[] {
  const pattern =
    label === 'CERTIFICATE'
      ? /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g
      : /-----BEGIN ([A-Z ]+ )?PRIVATE KEY-----[\s\S]+?-----END ([A-Z ]+ )?PRIVATE KEY-----/g;
  return (text.match(pattern) ?? []).map((block) => `${block}\n`);
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}
