/**
 * Resumable artifact download into `<dest>.part`, renamed to `<dest>` when complete. Across restarts the
 * part file stays; the next attempt re-hashes it and asks for the rest with `Range` + `If-Range: <etag>`,
 * so finished bytes are never fetched twice and a changed artifact restarts from zero. The body is
 * streamed to disk and into the sha256 as it arrives: memory use does not grow with the artifact.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rename, stat, truncate } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type PacingTime, TokenBucket, takeFrom } from '../core/token-bucket.js';
import { fsyncDir, isNotFound, readJson, removeDurably, writeJsonAtomic } from './fsutil.js';

const realPacing: PacingTime = {
  now: () => performance.now(),
  wait: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export type HttpFetch = typeof fetch;

export interface DownloadOptions {
  url: string;
  /** Final path; `<dest>.part` and `<dest>.part.json` (the validator) live beside it meanwhile. */
  dest: string;
  fetch?: HttpFetch;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Bytes done so far and the total when the server said. */
  onProgress?: (done: number, total: number | undefined) => void | Promise<void>;
  /** At most this many bytes per second (the offer's download_rate_limit; docs/bandwidth.md). */
  rateLimit?: number | undefined;
  /** The time the limit is paced by: real by default, virtual in tests. */
  pacing?: PacingTime | undefined;
}

export interface DownloadResult {
  size: number;
  sha256: string;
  /** Bytes already on disk when this attempt started. */
  resumedFrom: number;
}

export class DownloadError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    /** The server refused (4xx): retrying the same request will not help. */
    readonly permanent = false,
  ) {
    super(message);
    this.name = 'DownloadError';
  }
}

interface PartMeta {
  url: string;
  etag?: string;
}

export async function download(options: DownloadOptions): Promise<DownloadResult> {
  const { dest } = options;
  const part = `${dest}.part`;
  const metaPath = `${dest}.part.json`;
  const complete = await sizeOf(dest);
  if (complete !== undefined) {
    return { size: complete, sha256: (await hashFile(dest)).digest('hex'), resumedFrom: complete };
  }
  // Two rounds at most: the second starts from zero after the server would not resume.
  for (let round = 0; round < 2; round++) {
    const meta = await readJson<PartMeta>(metaPath);
    let offset = meta?.url === options.url ? ((await sizeOf(part)) ?? 0) : 0;
    if (offset === 0) await truncateTo(part, 0);
    const headers: Record<string, string> = { ...options.headers };
    if (offset > 0) {
      headers['range'] = `bytes=${offset}-`;
      if (meta?.etag) headers['if-range'] = meta.etag;
    }
    const res = await request(options, headers);
    let total: number | undefined;
    if (res.status === 206) {
      const range = parseContentRange(res.headers.get('content-range'));
      if (range?.start !== offset) {
        await discard(res, part);
        continue;
      }
      total = range.total;
    } else if (res.status === 200) {
      offset = 0; // the server ignored the range (or the validator changed): start over
      const length = Number(res.headers.get('content-length'));
      total = Number.isFinite(length) && res.headers.has('content-length') ? length : undefined;
    } else if (res.status === 416) {
      const range = parseContentRange(res.headers.get('content-range'));
      await res.body?.cancel();
      if (range?.total === offset) return finish(part, metaPath, dest, await hashFile(part), offset, offset);
      await truncateTo(part, 0);
      continue;
    } else {
      await res.body?.cancel();
      const permanent = res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429;
      throw new DownloadError(`download failed: HTTP ${res.status}`, res.status, permanent);
    }
    const etag = res.headers.get('etag') ?? undefined;
    await writeJsonAtomic(metaPath, { url: options.url, ...(etag ? { etag } : {}) } satisfies PartMeta);
    const hash = offset > 0 ? await hashFile(part) : createHash('sha256');
    const size = await receive(res, part, offset, hash, total, options);
    if (total !== undefined && size !== total) {
      throw new DownloadError(`download incomplete: ${size} of ${total} bytes`);
    }
    return finish(part, metaPath, dest, hash, size, offset);
  }
  throw new DownloadError('download failed: the server would not resume or restart the transfer');
}

async function request(options: DownloadOptions, headers: Record<string, string>): Promise<Response> {
  try {
    return await (options.fetch ?? fetch)(options.url, {
      headers,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (e) {
    if (options.signal?.aborted) throw e;
    throw new DownloadError(`download failed: ${(e as Error).message}`);
  }
}

/** Appends the body to the part file, hashing as it goes; what arrived before an error stays on disk. */
async function receive(
  res: Response,
  part: string,
  offset: number,
  hash: Hash,
  total: number | undefined,
  options: DownloadOptions,
): Promise<number> {
  const file = await open(part, offset > 0 ? 'a' : 'w');
  let done = offset;
  // Reading no faster than the limit lets TCP's flow control slow the sender down: the link is spared, not
  // only this process's buffers. One bucket per attempt: a resume starts with a fresh burst.
  const pacing = options.pacing ?? realPacing;
  const bucket = options.rateLimit ? new TokenBucket(options.rateLimit, undefined, pacing.now()) : undefined;
  try {
    if (!res.body) throw new DownloadError('download failed: empty response');
    const reader = res.body.getReader();
    try {
      await options.onProgress?.(done, total);
      for (;;) {
        const chunk = await reader.read().catch((e: unknown) => {
          if (options.signal?.aborted) throw e;
          throw new DownloadError(`download interrupted at ${done} bytes: ${(e as Error).message}`);
        });
        if (chunk.done) break;
        // A paced read takes a burst at most at a time: a large chunk (the socket's buffer after a wait) must
        // not go through as one debt.
        const step = bucket ? bucket.burst : chunk.value.byteLength;
        for (let at = 0; at < chunk.value.byteLength; at += step) {
          const piece = chunk.value.subarray(at, at + step);
          if (bucket) await takeFrom(bucket, piece.byteLength, pacing);
          await file.write(piece);
          hash.update(piece);
        }
        done += chunk.value.byteLength;
        await options.onProgress?.(done, total);
      }
    } catch (e) {
      await reader.cancel().catch(() => undefined); // let go of the connection
      throw e;
    }
    await file.sync();
  } finally {
    await file.close();
  }
  return done;
}

async function finish(
  part: string,
  metaPath: string,
  dest: string,
  hash: Hash,
  size: number,
  resumedFrom: number,
): Promise<DownloadResult> {
  await rename(part, dest);
  await removeDurably(metaPath);
  await fsyncDir(dirname(dest));
  return { size, sha256: hash.digest('hex'), resumedFrom };
}

async function discard(res: Response, part: string): Promise<void> {
  await res.body?.cancel();
  await truncateTo(part, 0);
}

export async function hashFile(path: string): Promise<Hash> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash;
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

async function truncateTo(path: string, size: number): Promise<void> {
  try {
    await truncate(path, size);
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
}

/** Parses `bytes 100-199/200`, or `bytes *\/200` on a 416. */
export function parseContentRange(header: string | null): { start?: number; total?: number } | undefined {
  const m = /^bytes (?:(\d+)-\d+|\*)\/(\d+|\*)$/.exec(header?.trim() ?? '');
  if (!m) return undefined;
  return {
    ...(m[1] !== undefined ? { start: Number(m[1]) } : {}),
    ...(m[2] !== undefined && m[2] !== '*' ? { total: Number(m[2]) } : {}),
  };
}
