/**
 * A device's certificate from its CSR: the device makes its key and never sends it; FleetD checks the request
 * is signed by that key and names the device, then signs a client certificate with the device id as its CN.
 */
import { createHash } from 'node:crypto';
import { FleetError } from '../core/errors.js';
import { type Authority, CLOCK_SKEW_MS } from './authority.js';
import { certificateFingerprint } from './describe.js';
import { CA_SIGNING_ALGORITHM, randomSerial, toPem, x509 } from './x509.js';

export interface IssuedCertificate {
  certificatePem: string;
  /** Lowercase hex. */
  serial: string;
  /** SHA-256 of the DER, lowercase hex. */
  fingerprint: string;
  notBefore: Date;
  notAfter: Date;
  /** SHA-256 of the public key (SPKI DER), lowercase hex: the same for every certificate of one device key. */
  keyFingerprint: string;
}

/** A CSR's text is small; anything much larger is not one (and is not parsed). */
const MAX_CSR_CHARS = 16 * 1024;

export async function issueDeviceCertificate(
  ca: Authority,
  csrPem: string,
  deviceId: string,
  opts: { now: Date; validityMs: number },
): Promise<IssuedCertificate> {
  const csr = await readCsr(csrPem);
  const names = csr.subjectName.getField('CN');
  if (names.length !== 1 || names[0] !== deviceId)
    throw new FleetError(
      'CSR_DEVICE_MISMATCH',
      `the CSR's subject CN must be the device id "${deviceId}" (it is ${names.length === 0 ? 'missing' : `"${names.join('", "')}"`})`,
    );
  const notBefore = new Date(opts.now.getTime() - CLOCK_SKEW_MS);
  const notAfter = new Date(
    Math.min(opts.now.getTime() + opts.validityMs, ca.certificate.notAfter.getTime()),
  );
  const serial = randomSerial();
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: [{ CN: [deviceId] }],
    issuer: ca.certificate.subjectName,
    notBefore,
    notAfter,
    signingAlgorithm: CA_SIGNING_ALGORITHM,
    publicKey: csr.publicKey,
    signingKey: ca.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
      await x509.SubjectKeyIdentifierExtension.create(csr.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca.certificate.publicKey),
    ],
  });
  return {
    certificatePem: toPem(certificate.rawData, 'CERTIFICATE'),
    serial,
    fingerprint: certificateFingerprint(certificate.rawData),
    // The DER keeps whole seconds: report what the certificate says.
    notBefore: certificate.notBefore,
    notAfter: certificate.notAfter,
    keyFingerprint: createHash('sha256').update(Buffer.from(csr.publicKey.rawData)).digest('hex'),
  };
}

/** Parses a PEM CSR, checks its key type and its own signature; every failure is CSR_INVALID. */
async function readCsr(csrPem: string): Promise<x509.Pkcs10CertificateRequest> {
  if (
    typeof csrPem !== 'string' ||
    csrPem.length > MAX_CSR_CHARS ||
    !/-----BEGIN CERTIFICATE REQUEST-----/.test(csrPem)
  )
    throw new FleetError(
      'CSR_INVALID',
      'expected a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----)',
    );
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch (error) {
    throw new FleetError('CSR_INVALID', 'the certificate request could not be parsed', undefined, {
      cause: error,
    });
  }
  let algorithm: { name?: string; namedCurve?: string };
  try {
    // Read lazily from the DER: a damaged key's parameters throw only here.
    algorithm = csr.publicKey.algorithm as { name?: string; namedCurve?: string };
  } catch (error) {
    throw new FleetError('CSR_INVALID', "the certificate request's key could not be read", undefined, {
      cause: error,
    });
  }
  const accepted =
    (algorithm.name === 'ECDSA' && algorithm.namedCurve === 'P-256') || algorithm.name === 'Ed25519';
  if (!accepted)
    throw new FleetError(
      'CSR_INVALID',
      `the certificate request's key must be ECDSA P-256 or Ed25519 (it is ${algorithm.name ?? 'unknown'}${algorithm.namedCurve ? ` ${algorithm.namedCurve}` : ''})`,
    );
  let signed = false;
  try {
    signed = await csr.verify();
  } catch (error) {
    throw new FleetError(
      'CSR_INVALID',
      "the certificate request's signature could not be checked",
      undefined,
      {
        cause: error,
      },
    );
  }
  if (!signed) throw new FleetError('CSR_INVALID', 'the certificate request is not signed by its own key');
  return csr;
}
