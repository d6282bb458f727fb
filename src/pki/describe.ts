/** Reading certificates: what a listing, a log line or an enrollment answer shows of one, never its key. */
import { createHash, X509Certificate } from 'node:crypto';
import { FleetError } from '../core/errors.js';
import { x509 } from './x509.js';

/** SHA-256 of a certificate's DER, lowercase hex without colons: how FleetD names a certificate. */
export function certificateFingerprint(der: Buffer | Uint8Array | ArrayBuffer): string {
  const bytes = der instanceof ArrayBuffer ? new Uint8Array(der) : der;
  return createHash('sha256').update(bytes).digest('hex');
}

/** SHA-256 of a certificate's public key (SPKI DER), lowercase hex: the same key's fingerprint as in its CSR. */
export function publicKeyFingerprint(der: Buffer): string {
  const spki = new X509Certificate(der).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('hex');
}

export interface CertificateDescription {
  subjectCommonName: string | null;
  organizationalUnit: string | null;
  /** Lowercase hex, as the CRL and the store name it. */
  serial: string;
  fingerprint: string;
  notBefore: Date;
  notAfter: Date;
  issuer: string;
  isCa: boolean;
}

/** Parses one PEM certificate; anything else is CERTIFICATE_INVALID (400). */
export function describeCertificate(pem: string): CertificateDescription {
  const cert = parseCertificate(pem);
  const constraints = cert.getExtension(x509.BasicConstraintsExtension);
  return {
    subjectCommonName: cert.subjectName.getField('CN')[0] ?? null,
    organizationalUnit: cert.subjectName.getField('OU')[0] ?? null,
    serial: normaliseSerial(cert.serialNumber),
    fingerprint: certificateFingerprint(cert.rawData),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    issuer: cert.issuer,
    isCa: constraints?.ca ?? false,
  };
}

/** The certificate in a PEM text (its first block), or CERTIFICATE_INVALID. */
export function parseCertificate(pem: string): x509.X509Certificate {
  if (!/-----BEGIN CERTIFICATE-----/.test(pem))
    throw new FleetError('CERTIFICATE_INVALID', 'expected a PEM certificate (-----BEGIN CERTIFICATE-----)');
  try {
    return new x509.X509Certificate(pem);
  } catch (error) {
    throw new FleetError('CERTIFICATE_INVALID', 'the PEM certificate could not be parsed', undefined, {
      cause: error,
    });
  }
}

/** Serials in lowercase hex without leading zero bytes, so the same certificate always has the same text. */
export function normaliseSerial(hex: string): string {
  const clean = hex.toLowerCase().replace(/[^0-9a-f]/g, '');
  const trimmed = clean.replace(/^(00)+/, '');
  return trimmed === '' ? '00' : trimmed;
}

/** The DNS names and IP addresses a certificate is for (its subjectAltName), in its order. */
export function certificateNames(pem: string): string[] {
  const san = parseCertificate(pem).getExtension(x509.SubjectAlternativeNameExtension);
  return (san?.names.items ?? []).filter((n) => n.type === 'dns' || n.type === 'ip').map((n) => n.value);
}
