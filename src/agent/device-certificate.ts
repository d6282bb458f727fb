/**
 * The device's certificate over its life: enrollment with a CSR, mutual TLS for every call, and renewal
 * before expiry with a fresh key, switched to for new connections without a gap (tls-fetch.ts).
 *
 * Which identity a device uses is decided once, at start: a bearer credential already on disk keeps being
 * used; otherwise the agent enrolls with a CSR when asked to (`--enroll-cert`) or when the server is https
 * and a FleetD CA is known (`--ca`, `ca.pem` in the state folder, or a provisioning bundle).
 */
import type { Clock } from '../core/clock.js';
import type { DeviceClient, EnrollBody, IssuedCertificate } from './client.js';
import type { HttpFetch } from './downloader.js';
import { type DeviceIdentity, IdentityFiles, type KeyAlgorithm, makeKeyAndCsr } from './identity.js';
import type { Logger } from './log.js';
import { DEFAULT_RENEW_AT, RenewalSchedule } from './renewal.js';
import type { Random } from './schedule.js';
import { TlsFetch } from './tls-fetch.js';

export interface CertificateOptions {
  stateDir: string;
  server: string;
  deviceId: string;
  /** PEM of the FleetD CA; else the state folder's ca.pem. */
  ca?: string | undefined;
  /** true: enroll with a CSR; false: never; undefined: when the server is https and a CA is known. */
  enroll?: boolean | undefined;
  keyAlgorithm?: KeyAlgorithm | undefined;
  /** The fraction of the validity after which to renew (default 2/3). */
  renewAt?: number | undefined;
  clock: Clock;
  random: Random;
  log: Logger;
}

export class DeviceCertificate {
  private identity: DeviceIdentity | undefined;
  private renewal: RenewalSchedule | undefined;

  private constructor(
    private readonly o: CertificateOptions,
    private readonly files: IdentityFiles,
    private readonly tls: TlsFetch | undefined,
    /** The FleetD CA the server is trusted with. */
    private ca: string | undefined,
    /** Whether this device authenticates with a certificate (else with a bearer credential). */
    readonly inUse: boolean,
  ) {}

  /**
   * Reads what the state folder holds and decides the mode. `hasCredential`: a bearer credential is on
   * disk (that device keeps it). Throws (with what to do) when the flags ask for something impossible.
   */
  static async open(o: CertificateOptions, hasCredential: boolean): Promise<DeviceCertificate> {
    const files = new IdentityFiles(o.stateDir);
    if (o.ca !== undefined) await files.writeCa(o.ca); // kept: later starts need no --ca
    const ca = o.ca ?? (await files.readCa());
    const https = new URL(o.server).protocol === 'https:';
    const identity = await files.read();
    const inUse = identity !== undefined || (!hasCredential && (o.enroll ?? (https && ca !== undefined)));
    if (inUse && !https) {
      throw new Error(`a device certificate is used over https only, and the server is ${o.server}`);
    }
    if (inUse && ca === undefined) {
      throw new Error(
        'no FleetD CA to trust the server with: pass --ca FILE (the server gives it at /api/v1/pki/ca)',
      );
    }
    const tls =
      https && ca !== undefined
        ? new TlsFetch({
            ca,
            ...(identity ? { certificatePem: identity.certificatePem, keyPem: identity.keyPem } : {}),
          })
        : undefined;
    const cert = new DeviceCertificate(o, files, tls, ca, inUse);
    if (identity) cert.adopt(identity);
    return cert;
  }

  /** The fetch to use: TLS with the FleetD CA (and the certificate once there is one), else none of ours. */
  get fetch(): HttpFetch | undefined {
    return this.tls?.fetch;
  }

  get enrolled(): boolean {
    return this.identity !== undefined;
  }

  get path(): string {
    return this.files.certificatePath;
  }

  /** Enrolls with a new key's CSR; the key and certificate are on disk before anything else happens. */
  async enroll(client: DeviceClient, body: EnrollBody): Promise<void> {
    const { keyPem, csrPem } = await makeKeyAndCsr(this.o.deviceId, this.o.keyAlgorithm);
    const issued = await client.enrollWithCsr(body, csrPem);
    await this.save(issued, keyPem);
    this.o.log.info('enrolled with a device certificate', {
      expires_at: new Date(this.identity!.notAfter).toISOString(),
    });
  }

  /**
   * Renews when due; a failure is logged and retried with backoff, the current certificate still in use.
   * True when a new certificate is in use (long-lived connections such as MQTT should reconnect).
   */
  async renewIfDue(client: DeviceClient): Promise<boolean> {
    const now = this.o.clock.now();
    if (!this.renewal?.due(now)) return false;
    try {
      const { keyPem, csrPem } = await makeKeyAndCsr(this.o.deviceId, this.o.keyAlgorithm);
      const issued = await client.renewCertificate(csrPem);
      await this.save(issued, keyPem);
      this.o.log.info('device certificate renewed', {
        expires_at: new Date(this.identity!.notAfter).toISOString(),
      });
      return true;
    } catch (e) {
      const wait = this.renewal.failed(now);
      this.o.log.warn('certificate renewal failed; the current certificate stays in use', {
        error: (e as Error).message,
        retry_in_s: Math.round(wait / 1000),
      });
      return false;
    }
  }

  /** The CA and the current certificate and key, for the device's other TLS connections (MQTT over TLS). */
  tlsMaterial(): { caPem: string | undefined; certificatePem?: string; keyPem?: string } {
    return this.identity
      ? { caPem: this.ca, certificatePem: this.identity.certificatePem, keyPem: this.identity.keyPem }
      : { caPem: this.ca };
  }

  /** Milliseconds until a renewal is due, when there is a certificate. */
  waitMs(): number | undefined {
    return this.renewal?.waitMs(this.o.clock.now());
  }

  async close(): Promise<void> {
    await this.tls?.close();
  }

  private async save(issued: IssuedCertificate, keyPem: string): Promise<void> {
    // The CA the server is trusted with stays the one the device was given; the answer's CA is kept only
    // when there was none on disk (it came over a connection that CA already vouched for).
    if (this.ca === undefined && issued.ca_certificate !== undefined) {
      await this.files.writeCa(issued.ca_certificate);
      this.ca = issued.ca_certificate;
    }
    const identity = await this.files.write(issued.certificate, keyPem, this.o.clock.now());
    if (this.ca !== undefined)
      this.tls?.use({ ca: this.ca, certificatePem: identity.certificatePem, keyPem: identity.keyPem });
    this.adopt(identity);
  }

  private adopt(identity: DeviceIdentity): void {
    this.identity = identity;
    if (this.renewal) this.renewal.renewed(identity);
    else this.renewal = new RenewalSchedule(identity, this.o.renewAt ?? DEFAULT_RENEW_AT, this.o.random);
  }
}
