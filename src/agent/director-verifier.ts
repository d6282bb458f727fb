/**
 * Uptane's director on the device (docs/signing.md, "The director"): a second tuf-js Updater, from the director
 * root the device was provisioned with, refreshes the director's metadata for this device (with its credential
 * or client certificate: the server signs it per device) and says whether the director's targets name this
 * release with the manifest's length and sha256, and this device. The image repository's check (TufVerifier)
 * runs too: a release is installed only when both sign it, so a server whose online keys are stolen can at
 * most stall updates, never install an image the offline keys did not sign.
 */
import type { HttpFetch } from './downloader.js';
import { signedTargetInfo } from './tuf-target-info.js';
import { type Manifest, type Verdict, verifyTarget } from './verify.js';

export interface DirectorVerifierOptions {
  /** The director's root.json from provisioning: written once, then tuf-js keeps the newest trusted root. */
  rootJson: string;
  /** The agent's folder for the director's trusted metadata (kept across restarts: rollback protection). */
  metadataDir: string;
  server: string;
  deviceId: string;
  fetch: HttpFetch;
  /** The device's authentication headers now (a bearer credential; none with a client certificate). */
  authHeaders: () => Record<string, string>;
}

export class DirectorVerifier {
  constructor(private readonly options: DirectorVerifierOptions) {}

  /**
   * Whether the director signed this release for this device (and, given the download, those very bytes).
   * Throws TufUnavailable when the metadata could not be fetched: the agent tries again later.
   */
  async verify(m: Manifest, download?: { size: number; sha256: string }): Promise<Verdict> {
    const target = `${m.name}@${m.version}`;
    const found = await signedTargetInfo(
      {
        rootJson: this.options.rootJson,
        metadataDir: this.options.metadataDir,
        metadataBaseUrl: `${this.options.server.replace(/\/+$/, '')}/api/device/v1/director`,
        fetch: this.options.fetch,
        headers: this.options.authHeaders,
      },
      target,
      'director',
    );
    if (!found.ok) return found;
    const info = found.value;
    if (!info || !verifyTarget(info, m) || info.custom.device_id !== this.options.deviceId) {
      return { ok: false, reason: `director: ${target} is not what the director signed for this device` };
    }
    if (download && !verifyTarget(info, download)) {
      return {
        ok: false,
        reason: `director: the download of ${target} does not match what the director signed for this device`,
      };
    }
    return { ok: true, value: undefined };
  }
}
