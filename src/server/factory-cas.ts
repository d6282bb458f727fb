/**
 * Factory CAs (bring your own CA, docs/device-certificates.md): the manufacturers' CAs an operator trusts, kept
 * in the store and followed by every replica. When the set changes the HTTPS listener (and, through
 * `onChange`, the MQTT broker) accepts client certificates from exactly these CAs from the next handshake on:
 * at once on the replica that made the change, within a poll (`refresh`) on the others.
 */
import type { DetailedPeerCertificate } from 'node:tls';
import type { Clock } from '../core/clock.js';
import { isValidDeviceId } from '../core/device.js';
import { FleetError } from '../core/errors.js';
import { certificateFingerprint, describeCertificate, publicKeyFingerprint } from '../pki/describe.js';
import {
  type HardwareFrom,
  parseHardwareFrom,
  readCaCertificate,
  readFactoryCertificate,
} from '../pki/factory-certificate.js';
import type { Store, TimeContext, TrustedCa } from '../store/store.js';
import type { ListenerTls } from './tls.js';

/** How often another replica's change to the set is looked for (`refresh`). */
export const FACTORY_CA_POLL_MS = 10_000;

export interface TrustRequest {
  certificatePem: string;
  name?: string | undefined;
  tags?: Record<string, string> | undefined;
  hardwareFrom?: string | undefined;
  approve?: boolean | undefined;
}

/** Which CA a verified client certificate chains to. */
export type CertificateOrigin =
  | { kind: 'fleetd' }
  | { kind: 'factory'; ca: TrustedCa; hardwareFrom: HardwareFrom }
  /** A CA no longer trusted here (a connection made before `ca untrust`). */
  | { kind: 'untrusted' };

const CA_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** Fingerprints known to be recorded: their first request registered them, later ones skip the look-up. */
const SEEN_LIMIT = 100_000;

export class FactoryCas {
  private trusted = new Map<string, { ca: TrustedCa; hardwareFrom: HardwareFrom }>();
  /** Whether requests must look at the chain: some CA is trusted, or one was untrusted since this start. */
  private watching = false;
  private readonly seen = new Set<string>();
  private listener: ListenerTls | undefined;
  private fleetdCa: string | undefined;
  /** Called after the listener's CAs changed (serve.ts hands the new set to the MQTT broker). */
  onChange: (() => void) | undefined;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  /** The HTTPS listener whose client CAs follow the set (none when the server speaks plain HTTP). */
  attach(listener: ListenerTls): void {
    this.listener = listener;
    this.fleetdCa = describeCertificate(listener.authority.certificatePem).fingerprint;
  }

  /** Reads the set from the store and applies it when it changed; true when it did. */
  async refresh(): Promise<boolean> {
    const cas = await this.store.trustedCas.list();
    const same =
      cas.length === this.trusted.size &&
      cas.every((ca) => this.trusted.get(ca.fingerprint)?.ca.name === ca.name);
    if (same) return false;
    if (this.trusted.size > 0) this.watching = true;
    this.trusted = new Map(
      cas.map((ca) => [ca.fingerprint, { ca, hardwareFrom: parseHardwareFrom(ca.hardwareFrom) }]),
    );
    if (cas.length > 0) this.watching = true;
    this.listener?.setClientCas(cas.map((ca) => ca.certificatePem));
    this.onChange?.();
    return true;
  }

  list(): Promise<TrustedCa[]> {
    return this.store.trustedCas.list();
  }

  /** Checks everything first (a CA certificate, the name, the rule), then trusts it and applies the new set. */
  async trust(request: TrustRequest, actor: string): Promise<TrustedCa> {
    const now = this.clock.now();
    const ca = readCaCertificate(request.certificatePem, new Date(now));
    const name = request.name ?? defaultName(ca.subject);
    if (!CA_NAME.test(name) || name === 'fleetd') {
      throw new FleetError(
        'VALIDATION',
        `name: "${name}" must be 1-64 letters, digits, ".", "_" or "-" and not "fleetd"; give --name`,
      );
    }
    const hardwareFrom = request.hardwareFrom ?? 'ou';
    parseHardwareFrom(hardwareFrom);
    if (ca.fingerprint === this.fleetdCa) {
      throw new FleetError('CONFLICT', "this is FleetD's own CA; its devices are trusted already");
    }
    const added = await this.store.trustedCas.add(
      {
        name,
        certificatePem: ca.certificatePem,
        fingerprint: ca.fingerprint,
        tags: request.tags ?? {},
        hardwareFrom,
        approve: request.approve ?? false,
        addedAt: now,
      },
      actor,
    );
    await this.refresh();
    return added;
  }

  async untrust(name: string, actor: string): Promise<TrustedCa> {
    const removed = await this.store.trustedCas.remove(name, this.clock.now(), actor);
    await this.refresh();
    return removed;
  }

  /** The CA a certificate TLS verified chains to; undefined when no factory CA is or was trusted here. */
  originOf(peer: DetailedPeerCertificate): CertificateOrigin | undefined {
    if (!this.watching) return undefined;
    let node: DetailedPeerCertificate | undefined = peer.issuerCertificate;
    let previous: DetailedPeerCertificate = peer;
    // A self-signed root is its own issuer: the walk ends there.
    while (node?.raw && node !== previous) {
      const fingerprint = certificateFingerprint(node.raw);
      if (fingerprint === this.fleetdCa) return { kind: 'fleetd' };
      const factory = this.trusted.get(fingerprint);
      if (factory) return { kind: 'factory', ...factory };
      previous = node;
      node = node.issuerCertificate;
    }
    return { kind: 'untrusted' };
  }

  /**
   * Just-in-time registration: the first request of a factory certificate registers its device (id from the
   * CN, hardware type and tags by the CA's rule) and records the certificate. DEVICE_EXISTS, DEVICE_DECOMMISSIONED,
   * VALIDATION (no usable CN) refuse it; with a CA marked `--approve` the device waits in the approval queue
   * (APPROVAL_PENDING until an operator accepts it).
   */
  async registerIfNew(
    der: Buffer,
    origin: Extract<CertificateOrigin, { kind: 'factory' }>,
    ctx: TimeContext,
  ): Promise<void> {
    const fingerprint = certificateFingerprint(der);
    if (this.seen.has(fingerprint)) return;
    const identity = readFactoryCertificate(der, origin.hardwareFrom);
    if (identity.deviceId === null || !isValidDeviceId(identity.deviceId)) {
      throw new FleetError(
        'VALIDATION',
        'the factory certificate has no subject CN that is a device id (letters, digits, ".", "_", ":", "-")',
      );
    }
    const device = {
      id: identity.deviceId,
      ...(identity.hardwareType === null ? {} : { hardwareType: identity.hardwareType }),
      tags: origin.ca.tags,
    };
    const certificate = {
      serial: identity.serial,
      deviceId: identity.deviceId,
      fingerprint,
      issuer: origin.ca.name,
      notBefore: identity.notBefore.getTime(),
      notAfter: identity.notAfter.getTime(),
      issuedAt: ctx.now,
    };
    if (origin.ca.approve) {
      // The approval queue: the certificate's key is the requester's proof, so only this certificate's holder
      // completes once an operator accepts the device (its certificate is recorded then).
      const outcome = await this.store.admission.request(
        {
          device,
          keyFingerprint: publicKeyFingerprint(der),
          credentialHash: null,
          certificate,
          actor: `ca:${origin.ca.name}`,
        },
        ctx,
      );
      if (outcome.admission === 'pending') {
        throw new FleetError(
          'APPROVAL_PENDING',
          `device ${identity.deviceId} waits for an operator's approval (fleetd devices accept ${identity.deviceId})`,
        );
      }
    } else {
      await this.store.trustedCas.registerDevice({ caName: origin.ca.name, device, certificate }, ctx);
    }
    if (this.seen.size >= SEEN_LIMIT) this.seen.clear();
    this.seen.add(fingerprint);
  }
}

/** A CA's name when none is given: its subject's CN (or the whole subject), made fit for a name. */
function defaultName(subject: string): string {
  const cn = /(?:^|,\s*)CN=([^,]+)/.exec(subject)?.[1] ?? subject;
  return cn
    .trim()
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 64);
}
