/**
 * TUF on the device (docs/signing.md): tuf-js's Updater refreshes the server's TUF metadata from the root the
 * device was provisioned with (the only trust anchor; newer roots arrive as a signed chain) and says what the
 * signed targets hold for a release. A release is installed only when its `name@version` is a signed target
 * whose length and sha256 are the manifest's and the download's. Thresholds, expiry (freeze), rollback of
 * metadata and mix-and-match are tuf-js's checks, not ours.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BaseFetcher, type TargetFile, Updater } from 'tuf-js';
// Not re-exported by the package's index; the Updater tells "no newer root" (a 404) by this type.
import { DownloadError, DownloadHTTPError } from 'tuf-js/dist/error.js';
import type { HttpFetch } from './downloader.js';
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

/** A fetch or server failure: worth a retry, unlike metadata that fails a check. */
export class TufUnavailable extends Error {}

class AgentFetcher extends BaseFetcher {
  constructor(private readonly fetchFn: HttpFetch) {
    super();
  }
  async fetch(url: string): Promise<ReadableStream<Uint8Array<ArrayBuffer>>> {
    const response = await this.fetchFn(url);
    if (!response.ok || !response.body) {
      throw new DownloadHTTPError(`HTTP ${response.status} for ${url}`, response.status);
    }
    return response.body as ReadableStream<Uint8Array<ArrayBuffer>>;
  }
}

export class TufVerifier {
  constructor(private readonly options: TufVerifierOptions) {}

  /**
   * Whether the signed targets name this release with the manifest's length and sha256 (and, given the
   * download's, the same again). Throws TufUnavailable when the metadata could not be fetched.
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
        throw new TufUnavailable(`TUF metadata unavailable: ${(e as Error).message}`, { cause: e });
      }
      return { ok: false, reason: `TUF metadata refused: ${(e as Error).message}` };
    }
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

  private async updater(): Promise<Updater> {
    const dir = this.options.metadataDir;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // Only the first time: afterwards root.json is the newest root tuf-js has verified through the chain.
    if (!existsSync(join(dir, 'root.json'))) await writeFile(join(dir, 'root.json'), this.options.rootJson);
    return new Updater({
      metadataDir: dir,
      metadataBaseUrl: (this.options.metadataUrl ?? `${this.options.server}/api/device/v1/tuf`).replace(
        /\/+$/,
        '',
      ),
      fetcher: new AgentFetcher(this.options.fetch),
      config: { fetchRetries: 0 },
    });
  }
}
