/**
 * One TUF repository read from the device by tuf-js (the image repository's, tuf-verifier.ts, and the
 * director's, director-verifier.ts): its trusted metadata refreshed from the root the device was provisioned
 * with, and what its signed targets say of one target.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BaseFetcher, type TargetFile, Updater } from 'tuf-js';
// Not re-exported by the package's index; the Updater tells "no newer root" (a 404) by this type.
import { DownloadError, DownloadHTTPError } from 'tuf-js/dist/error.js';
import type { HttpFetch } from './downloader.js';
import type { Verdict } from './verify.js';

/** A fetch or server failure: worth a retry, unlike metadata that fails a check. */
export class TufUnavailable extends Error {}

export interface TufSource {
  /** The root.json from provisioning: written once, then tuf-js keeps the newest trusted root. */
  rootJson: string;
  /** The agent's folder for this repository's trusted metadata (kept across restarts: rollback protection). */
  metadataDir: string;
  metadataBaseUrl: string;
  fetch: HttpFetch;
  /** The device's authentication headers now, for metadata signed per device; none for public metadata. */
  headers?: (() => Record<string, string>) | undefined;
}

class SourceFetcher extends BaseFetcher {
  constructor(private readonly source: TufSource) {
    super();
  }
  async fetch(url: string): Promise<ReadableStream<Uint8Array<ArrayBuffer>>> {
    const { fetch, headers } = this.source;
    const response = await (headers ? fetch(url, { headers: headers() }) : fetch(url));
    if (!response.ok || !response.body) {
      throw new DownloadHTTPError(`HTTP ${response.status} for ${url}`, response.status);
    }
    return response.body as ReadableStream<Uint8Array<ArrayBuffer>>;
  }
}

/**
 * The signed target entry of `target` after a refresh (undefined when the targets do not name it), or why the
 * metadata was refused. Throws TufUnavailable when it could not be fetched. `what` names the repository in
 * reasons: 'TUF' or 'director'.
 */
export async function signedTargetInfo(
  source: TufSource,
  target: string,
  what: string,
): Promise<Verdict<TargetFile | undefined>> {
  try {
    const updater = await updaterFor(source);
    await updater.refresh();
    return { ok: true, value: await updater.getTargetInfo(target) };
  } catch (e) {
    if (e instanceof DownloadError || e instanceof TypeError) {
      throw new TufUnavailable(`${what} metadata unavailable: ${(e as Error).message}`, { cause: e });
    }
    return { ok: false, reason: `${what} metadata refused: ${(e as Error).message}` };
  }
}

async function updaterFor(source: TufSource): Promise<Updater> {
  const dir = source.metadataDir;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // Only the first time: afterwards root.json is the newest root tuf-js has verified through the chain.
  if (!existsSync(join(dir, 'root.json'))) await writeFile(join(dir, 'root.json'), source.rootJson);
  return new Updater({
    metadataDir: dir,
    metadataBaseUrl: source.metadataBaseUrl,
    fetcher: new SourceFetcher(source),
    config: { fetchRetries: 0 },
  });
}
