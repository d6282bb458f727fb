/**
 * Factory certificates: a manufacturer's CA an operator trusts, and what a device certificate it issued says of
 * its device (id from the subject CN, hardware type from the OU or from an OID the operator names).
 */
import { fromBER } from 'asn1js';
import { FleetError } from '../core/errors.js';
import { certificateFingerprint, normaliseSerial, parseCertificate } from './describe.js';
import { x509 } from './x509.js';

/** Where the hardware type is read: the subject's OU, or an OID (a subject attribute or an extension). */
export type HardwareFrom = { kind: 'ou' } | { kind: 'oid'; oid: string };

const DOTTED_OID = /^[0-2](\.(0|[1-9]\d*))+$/;

/** `ou` or `oid:1.2.3…` (`--hardware-from`), or VALIDATION. */
export function parseHardwareFrom(text: string): HardwareFrom {
  if (text === 'ou') return { kind: 'ou' };
  const oid = text.startsWith('oid:') ? text.slice(4) : undefined;
  if (oid !== undefined && DOTTED_OID.test(oid)) return { kind: 'oid', oid };
  throw new FleetError(
    'VALIDATION',
    `hardware_from: "${text}" must be "ou" or "oid:" and a dotted OID, e.g. oid:1.3.6.1.4.1.55555.1`,
  );
}

export interface TrustedCaCertificate {
  certificatePem: string;
  fingerprint: string;
  subject: string;
  notAfter: Date;
}

/** A CA certificate to trust (basicConstraints CA:true), or CERTIFICATE_INVALID in one line. */
export function readCaCertificate(pem: string, now: Date): TrustedCaCertificate {
  const cert = parseCertificate(pem);
  const constraints = cert.getExtension(x509.BasicConstraintsExtension);
  if (!constraints?.ca) {
    throw new FleetError(
      'CERTIFICATE_INVALID',
      `${cert.subject} is not a CA certificate (it lacks basicConstraints CA:TRUE); give the manufacturer's CA`,
    );
  }
  if (cert.notAfter <= now) {
    throw new FleetError('CERTIFICATE_INVALID', `the CA certificate ${cert.subject} has expired`);
  }
  return {
    certificatePem: cert.toString('pem'),
    fingerprint: certificateFingerprint(cert.rawData),
    subject: cert.subject,
    notAfter: cert.notAfter,
  };
}

export interface FactoryIdentity {
  /** The subject CN: the device id. */
  deviceId: string | null;
  hardwareType: string | null;
  serial: string;
  fingerprint: string;
  notBefore: Date;
  notAfter: Date;
}

/** What a device's factory certificate (DER, as TLS gives it) says of its device. */
export function readFactoryCertificate(der: Uint8Array, hardwareFrom: HardwareFrom): FactoryIdentity {
  const cert = new x509.X509Certificate(der);
  return {
    deviceId: cert.subjectName.getField('CN')[0] ?? null,
    hardwareType:
      hardwareFrom.kind === 'ou'
        ? (cert.subjectName.getField('OU')[0] ?? null)
        : oidValue(cert, hardwareFrom.oid),
    serial: normaliseSerial(cert.serialNumber),
    fingerprint: certificateFingerprint(cert.rawData),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
  };
}

/** The text of a subject attribute with this OID or, failing that, of an extension holding a string. */
function oidValue(cert: x509.X509Certificate, oid: string): string | null {
  const attribute = cert.subjectName.getField(oid)[0];
  if (attribute !== undefined) return attribute;
  const extension = cert.getExtension(oid);
  if (!extension) return null;
  const { result, offset } = fromBER(extension.value);
  if (offset === -1) return null;
  // Utf8String, PrintableString, IA5String and the other string types all carry their text in valueBlock.value.
  const value = (result.valueBlock as { value?: unknown }).value;
  return typeof value === 'string' && value !== '' ? value : null;
}
