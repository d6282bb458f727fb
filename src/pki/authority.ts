/**
 * The FleetD CA: one ECDSA P-256 key that signs the server's TLS certificate, the devices' certificates and
 * the revocation list. It lives in the data folder (`pki/ca.crt`, `pki/ca.key` 0600) and is made on first use.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { FleetError } from '../core/errors.js';
import { certificateFingerprint, parseCertificate } from './describe.js';
import { writeKeyFile, writePublicFile } from './key-file.js';
import {
  CA_KEY_ALGORITHM,
  CA_SIGNING_ALGORITHM,
  type CryptoKey,
  type CryptoKeyPair,
  randomSerial,
  toPem,
  webcrypto,
  x509,
} from './x509.js';

export interface Authority {
  /** The CA certificate, PEM. */
  certificatePem: string;
  /** SHA-256 of the certificate's DER, lowercase hex, no colons. */
  fingerprint: string;
  /** The webcrypto key that signs. */
  privateKey: CryptoKey;
  /** The parsed certificate: its subject is the issuer of all FleetD certificates. */
  certificate: x509.X509Certificate;
}

export const CA_CERTIFICATE_FILE = 'ca.crt';
export const CA_KEY_FILE = 'ca.key';
const CA_VALIDITY_MS = 10 * 365.25 * 24 * 3600_000;
const SERVER_VALIDITY_MS = 397 * 24 * 3600_000; // the longest browsers accept for a server certificate
/** Certificates start a little in the past so a device whose clock lags a few minutes still accepts them. */
export const CLOCK_SKEW_MS = 5 * 60_000;

/** Loads under way, by folder: two parts of one server asking at once must not make two CAs. */
const loading = new Map<string, Promise<Authority>>();

/** The CA in `dir` (ca.crt + ca.key), made there when neither file exists. */
export function loadOrCreateAuthority(dir: string, now: Date): Promise<Authority> {
  const key = resolve(dir);
  const pending = loading.get(key);
  if (pending) return pending;
  const load = loadOrCreate(dir, now).finally(() => loading.delete(key));
  loading.set(key, load);
  return load;
}

async function loadOrCreate(dir: string, now: Date): Promise<Authority> {
  const certFile = join(dir, CA_CERTIFICATE_FILE);
  const keyFile = join(dir, CA_KEY_FILE);
  const hasCert = existsSync(certFile);
  const hasKey = existsSync(keyFile);
  if (hasCert && hasKey)
    return authorityFromPem(readFileSync(certFile, 'utf8'), readFileSync(keyFile, 'utf8'));
  if (hasCert || hasKey)
    throw new FleetError(
      'CERTIFICATE_INVALID',
      `${hasCert ? keyFile : certFile} is missing while ${hasCert ? certFile : keyFile} exists: restore it, or move both away to make a new CA`,
    );
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { certificatePem, privateKeyPem } = await createAuthority(now);
  writeKeyFile(keyFile, privateKeyPem);
  writePublicFile(certFile, certificatePem);
  return authorityFromPem(certificatePem, privateKeyPem);
}

async function createAuthority(now: Date): Promise<{ certificatePem: string; privateKeyPem: string }> {
  const keys = (await webcrypto.subtle.generateKey(CA_KEY_ALGORITHM, true, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [{ CN: [`FleetD CA ${randomSerial().slice(0, 8)}`] }, { O: ['FleetD'] }],
    notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
    notAfter: new Date(now.getTime() + CA_VALIDITY_MS),
    signingAlgorithm: CA_SIGNING_ALGORITHM,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return {
    certificatePem: toPem(certificate.rawData, 'CERTIFICATE'),
    privateKeyPem: toPem(pkcs8, 'PRIVATE KEY'),
  };
}

/** The CA from its certificate and PKCS#8 key; refused when the key is not the certificate's or it is no CA. */
export async function authorityFromPem(certificatePem: string, privateKeyPem: string): Promise<Authority> {
  const certificate = parseCertificate(certificatePem);
  if (!certificate.getExtension(x509.BasicConstraintsExtension)?.ca)
    throw new FleetError(
      'CERTIFICATE_INVALID',
      'the CA certificate is not marked as a CA (basicConstraints cA)',
    );
  let privateKey: CryptoKey;
  try {
    privateKey = await webcrypto.subtle.importKey(
      'pkcs8',
      x509.PemConverter.decodeFirst(privateKeyPem),
      CA_KEY_ALGORITHM,
      true,
      ['sign'],
    );
  } catch (error) {
    throw new FleetError(
      'CERTIFICATE_INVALID',
      'the CA key is not an ECDSA P-256 PKCS#8 PEM key',
      undefined,
      {
        cause: error,
      },
    );
  }
  await assertKeyMatches(certificate, privateKey);
  return {
    certificatePem: toPem(certificate.rawData, 'CERTIFICATE'),
    fingerprint: certificateFingerprint(certificate.rawData),
    privateKey,
    certificate,
  };
}

/** Signs a probe with the key and checks it with the certificate's public key: a mismatched pair fails here, not at the first device. */
async function assertKeyMatches(certificate: x509.X509Certificate, privateKey: CryptoKey): Promise<void> {
  const probe = webcrypto.getRandomValues(new Uint8Array(32));
  const signature = await webcrypto.subtle.sign(CA_SIGNING_ALGORITHM, privateKey, probe);
  const publicKey = await certificate.publicKey.export(CA_KEY_ALGORITHM, ['verify']);
  if (!(await webcrypto.subtle.verify(CA_SIGNING_ALGORITHM, publicKey, signature, probe)))
    throw new FleetError('CERTIFICATE_INVALID', 'the CA key does not belong to the CA certificate');
}

/** A TLS server certificate for the given DNS names and IP addresses (subjectAltName), with a fresh P-256 key. */
export async function issueServerCertificate(
  ca: Authority,
  names: string[],
  now: Date,
): Promise<{ certificatePem: string; privateKeyPem: string }> {
  const unique = [...new Set(names.map((n) => n.trim()).filter((n) => n !== ''))];
  if (unique.length === 0) throw new FleetError('VALIDATION', 'a server certificate needs at least one name');
  const keys = (await webcrypto.subtle.generateKey(CA_KEY_ALGORITHM, true, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: [{ CN: [unique[0] as string] }],
    issuer: ca.certificate.subjectName,
    notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
    notAfter: new Date(Math.min(now.getTime() + SERVER_VALIDITY_MS, ca.certificate.notAfter.getTime())),
    signingAlgorithm: CA_SIGNING_ALGORITHM,
    publicKey: keys.publicKey,
    signingKey: ca.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(
        unique.map((name) => ({ type: isIP(name) ? ('ip' as const) : ('dns' as const), value: name })),
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca.certificate.publicKey),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return {
    certificatePem: toPem(certificate.rawData, 'CERTIFICATE'),
    privateKeyPem: toPem(pkcs8, 'PRIVATE KEY'),
  };
}

/** Whether the CA signed this certificate (signature only: validity dates are the caller's business). */
export async function isIssuedBy(ca: Authority, certificatePem: string): Promise<boolean> {
  try {
    return await parseCertificate(certificatePem).verify({
      publicKey: ca.certificate.publicKey,
      signatureOnly: true,
    });
  } catch {
    return false;
  }
}
