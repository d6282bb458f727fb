/**
 * Uptane's director on the device (docs/signing.md, "The director"): a second tuf-js Updater, from the director
 * root the device was provisioned with, refreshes the director's metadata for this device (with its credential
 * or client certificate: the server signs it per device) and says whether the director's targets name this
 * release with the manifest's length and sha256, and this device. The image repository's check (TufVerifier)
 * runs too: a release is installed only when both sign it, so a server whose online keys are stolen can at
 * most stall updates, never install an image the offline keys did not sign.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BaseFetcher, type TargetFile, Updater } from 'tuf-js';
// Not re-exported by the package's index; the Updater tells "no newer root" (a 404) by this type.
import { DownloadError, DownloadHTTPError } from 'tuf-js/dist/error.js';
import type { HttpFetch } from './downloader.js';
import { TufUnavailable } from './tuf-verifier.js';
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

class DeviceFetcher extends BaseFetcher {
  constructor(
    private readonly fetchFn: HttpFetch,
    private readonly headers: () => Record<string, string>,
  ) {
    super();
  }
  async fetch(url: string): Promise<ReadableStream<Uint8Array<ArrayBuffer>>> {
    const response = await this.fetchFn(url, { headers: this.headers() });
    if (!response.ok || !response.body) {
      throw new DownloadHTTPError(`HTTP ${response.status} for ${url}`, response.status);
    }
    return response.body as ReadableStream<Uint8Array<ArrayBuffer>>;
  }
}

export class DirectorVerifier {
  constructor(private readonly options: DirectorVerifierOptions) {}

  /**
   * Whether the director signed this release for this device (and, given the download, those very bytes).
   * Throws TufUnavailable when the metadata could not be fetched: the agent tries again later.
   */
  async verify(m: Manifest, download?: { size: number; sha256: string }): Promise<Verdict> {
    const target = `${m.name}@${m.version}`;
    let info: TargetFile | undefined;
    try {
      const updater = await this.updater();
      await updater.refresh();
      info = await updater.getTargetInfo(target);
    } catch (e) {
      if (e instanceof DownloadError || e instanceof TypeError) {
        throw new TufUnavailable(`director metadata unavailable: ${(e as Error).message}`, { cause: e });
      }
      return { ok: false, reason: `director metadata refused: ${(e as Error).message}` };
    }
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

  private async updater(): Promise<Updater> {
    const dir = this.options.metadataDir;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if (!existsSync(join(dir, 'root.json'))) await writeFile(join(dir, 'root.json'), this.options.rootJson);
    return new Updater({
      metadataDir: dir,
      metadataBaseUrl: `${this.options.server.replace(/\/+$/, '')}/api/device/v1/director`,
      fetcher: new DeviceFetcher(this.options.fetch, this.options.authHeaders),
      config: { fetchRetries: 0 },
    });
  }
}
