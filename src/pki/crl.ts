/** The revocation list FleetD publishes for proxies and brokers that check certificates themselves. */
import type { Authority } from './authority.js';
import { normaliseSerial } from './describe.js';
import { CA_SIGNING_ALGORITHM, toPem, x509 } from './x509.js';

const CRL_NUMBER_OID = '2.5.29.20';

/** A CRL signed by the CA, listing the given serials (lowercase hex), valid from `now` for `nextUpdateMs`. PEM. */
export async function createCrl(
  ca: Authority,
  revoked: { serial: string; revokedAt: Date }[],
  now: Date,
  nextUpdateMs: number,
): Promise<string> {
  const crl = await x509.X509CrlGenerator.create({
    issuer: ca.certificate.subjectName,
    thisUpdate: now,
    nextUpdate: new Date(now.getTime() + nextUpdateMs),
    signingAlgorithm: CA_SIGNING_ALGORITHM,
    signingKey: ca.privateKey,
    // Each entry carries its invalidity date: the library writes an empty (non-DER) extension list otherwise.
    entries: revoked.map((r) => ({
      serialNumber: normaliseSerial(r.serial),
      revocationDate: r.revokedAt,
      invalidity: r.revokedAt,
    })),
    extensions: [
      await x509.AuthorityKeyIdentifierExtension.create(ca.certificate.publicKey),
      // RFC 5280 asks for a CRL number that grows: the issue time in milliseconds does, whichever replica signs.
      new x509.Extension(CRL_NUMBER_OID, false, derInteger(BigInt(now.getTime()))),
    ],
  });
  // OpenSSL and nginx read the label "X509 CRL"; the library writes "CRL".
  return toPem(crl.rawData, 'X509 CRL');
}

/** DER INTEGER of a non-negative number. */
function derInteger(value: bigint): Uint8Array {
  let hex = value.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  if (Number.parseInt(hex.slice(0, 2), 16) >= 0x80) hex = `00${hex}`;
  const body = Buffer.from(hex, 'hex');
  return Uint8Array.from([0x02, body.length, ...body]);
}
