/**
 * Device certificates, server side: issuing one from the FleetD CA for a device's CSR (at enrollment and at
 * renewal) and signing the CRL of those revoked. The CA lives in `<data>/pki` and is made the first time it is
 * needed. Issuing only signs: the caller records the certificate in the store, in its own transaction.
 */
import type { Clock } from '../core/clock.js';
import { type Authority, loadOrCreateAuthority } from '../pki/authority.js';
import { createCrl } from '../pki/crl.js';
import { issueDeviceCertificate } from '../pki/device-certificate.js';
import { FLEETD_ISSUER, type NewDeviceCertificate, type Store } from '../store/store.js';

/** Default validity of a device certificate (`--device-cert-validity`); the agent renews at two thirds. */
export const DEFAULT_DEVICE_CERT_VALIDITY_MS = 90 * 86_400_000;

/** How long a published CRL is good for: proxies fetch it again before then. */
const CRL_NEXT_UPDATE_MS = 3_600_000;

export interface DeviceCertificate {
  /** What the store records (recorded by the caller, with the enrollment or on its own). */
  record: NewDeviceCertificate;
  certificatePem: string;
  caCertificatePem: string;
  /** SHA-256 of the device's public key: what proves a request in the approval queue comes from the same key. */
  keyFingerprint: string;
}

export class DeviceCertificates {
  private authority: Promise<Authority> | undefined;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly pkiDir: string,
    readonly validityMs = DEFAULT_DEVICE_CERT_VALIDITY_MS,
  ) {}

  /** The FleetD CA, loaded (or made) once; a failure is not kept, so the next request tries again. */
  ca(): Promise<Authority> {
    this.authority ??= loadOrCreateAuthority(this.pkiDir, new Date(this.clock.now())).catch(
      (error: unknown) => {
        this.authority = undefined;
        throw error;
      },
    );
    return this.authority;
  }

  /** Signs a certificate for `deviceId` from its CSR (CSR_INVALID, CSR_DEVICE_MISMATCH); writes nothing. */
  async issue(csrPem: string, deviceId: string): Promise<DeviceCertificate> {
    const ca = await this.ca();
    const now = this.clock.now();
    const issued = await issueDeviceCertificate(ca, csrPem, deviceId, {
      now: new Date(now),
      validityMs: this.validityMs,
    });
    return {
      record: {
        serial: issued.serial,
        deviceId,
        fingerprint: issued.fingerprint,
        issuer: FLEETD_ISSUER,
        notBefore: issued.notBefore.getTime(),
        notAfter: issued.notAfter.getTime(),
        issuedAt: now,
      },
      certificatePem: issued.certificatePem,
      caCertificatePem: ca.certificatePem,
      keyFingerprint: issued.keyFingerprint,
    };
  }

  /** The CRL (PEM) of every revoked certificate the FleetD CA issued, signed now. */
  async crl(): Promise<string> {
    const ca = await this.ca();
    const revoked = await this.store.certificates.revoked(FLEETD_ISSUER);
    const now = this.clock.now();
    return createCrl(
      ca,
      revoked.map((r) => ({ serial: r.serial, revokedAt: new Date(r.revokedAt) })),
      new Date(now),
      CRL_NEXT_UPDATE_MS,
    );
  }
}
