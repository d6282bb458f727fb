/**
 * TUF on the device (docs/signing.md): tuf-js's Updater refreshes the server's TUF metadata from the root the
 * device was provisioned with (the only trust anchor; newer roots arrive as a signed chain) and says what the
 * signed targets hold for a release. A release is installed only when its `name@version` is a signed target
 * whose length and sha256 are the manifest's and the download's. Thresholds, expiry (freeze), rollback of
 * metadata and mix-and-match are tuf-js's checks, not ours.
 */
import type { HttpFetch } from './downloader.js';
import { signedTargetInfo } from './tuf-target-info.js';
import { type Manifest, type Verdict, verifyTarget } from './verify.js';

export interface TufVerifierOptions {
  /** The root.json of the provisioning bundle: written once, then tuf-js keeps the newest trusted root. */
  rootJson: string;
  /** The agent's folder for trusted metadata (kept across restarts: rollback protection needs it). */
  metadataDir: string;
  /** The server's URL. */
  server: string;
  /**
   * Where the metadata is read from instead of the server's `/api/device/v1/tuf`: a mirror (a CDN, a site
   * cache) of `fleetd server --tuf-mirror`. Public files, fetched without the device's credential.
   */
  metadataUrl?: string | undefined;
  fetch: HttpFetch;
}

/** Thrown by both verifiers; kept importable from here. */
export { TufUnavailable } from './tuf-target-info.js';

export class TufVerifier {
  constructor(private readonly options: TufVerifierOptions) {}

  /**
   * Whether the signed targets name this release with the manifest's length and sha256 (and, given the
   * download's, the same again). Throws TufUnavailable when the metadata could not be fetched.
   */
  async verify(m: Manifest, download?: { size: number; sha256: string }): Promise<Verdict> {
    const target = `${m.name}@${m.version}`;
    const found = await signedTargetInfo(
      {
        rootJson: this.options.rootJson,
        metadataDir: this.options.metadataDir,
        metadataBaseUrl: (this.options.metadataUrl ?? `${this.options.server}/api/device/v1/tuf`).replace(
          /\/+$/,
          '',
        ),
        fetch: this.options.fetch,
      },
      target,
      'TUF',
    );
    if (!found.ok) return found;
    const info = found.value;
    if (!info) return { ok: false, reason: `TUF: ${target} is not in the signed targets` };
    if (!verifyTarget(info, m)) {
      return { ok: false, reason: `TUF: the signed target ${target} differs from the release's manifest` };
    }
    if (download && !verifyTarget(info, download)) {
      return {
        ok: false,
        reason: `TUF: the download of ${target} does not match its signed length and sha256`,
      };
    }
    return { ok: true, value: undefined };
  }
}
