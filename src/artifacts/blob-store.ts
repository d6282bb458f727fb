/**
 * Content-addressed artifact storage. A blob is named by the sha256 of its bytes, so it is written once
 * and never changes; the same upload twice is one blob. On disk:
 *
 *   <dataDir>/blobs/sha256/ab/abcdef…   complete blobs (first two hex characters fan out the folders)
 *   <dataDir>/blobs/tmp/<random>.part   uploads in progress
 *
 * An upload streams into a temp file while being hashed (memory does not grow with its size), is fsynced,
 * and only then renamed to its hash: a reader sees a whole blob or none, even after a crash.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type FileHandle, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { type Clock, systemClock } from '../core/clock.js';
import { FleetError } from '../core/errors.js';

export interface BlobInfo {
  sha256: string;
  size: number;
}

/** What re-hashing a stored blob found. `size` is the stored file's (0 when it is missing). */
export type BlobCheck =
  | { state: 'intact'; size: number }
  | { state: 'missing'; size: 0 }
  /** The file no longer hashes to its name: `foundSha256` is what it hashes to now. */
  | { state: 'corrupt'; size: number; foundSha256: string };

export interface PutResult extends BlobInfo {
  /** Set when a stored blob of these bytes was damaged and the upload replaced it: what was found. */
  repaired?: BlobCheck & { state: 'corrupt' };
}

export interface PutOptions {
  /** The upload must be exactly this long; a longer one is cut off as soon as it overshoots. */
  expectedSize?: number;
  /** PAYLOAD_TOO_LARGE as soon as the upload passes this many bytes. */
  maxSize?: number;
  /** The upload must hash to this (e.g. the manifest's sha256); otherwise nothing is kept. */
  expectedSha256?: string;
  /** VALIDATION when the upload ends without a byte; nothing is kept. */
  refuseEmpty?: boolean;
}

/** Inclusive byte offsets, as in an HTTP Range and fs.createReadStream. */
export interface ByteRange {
  start?: number;
  end?: number;
}

/** What the server needs from artifact storage; an object-store or CDN backend may replace the filesystem. */
export interface BlobStore {
  put(stream: Readable, opts?: PutOptions): Promise<PutResult>;
  /** Re-hashes the stored bytes: whether they still hash to their name. */
  check(sha256: string): Promise<BlobCheck>;
  has(sha256: string): Promise<boolean>;
  stat(sha256: string): Promise<BlobInfo | undefined>;
  /** Opens before resolving, so a missing blob is NOT_FOUND here, not an error in mid-stream. */
  createReadStream(sha256: string, range?: ByteRange): Promise<Readable>;
  /** Whether there was a blob to delete. */
  delete(sha256: string): Promise<boolean>;
}

const SHA256 = /^[0-9a-fA-F]{64}$/;

/** The lowercase hash, or VALIDATION: nothing else may ever reach a file path. */
export function checkSha256(sha256: string): string {
  if (typeof sha256 !== 'string' || !SHA256.test(sha256)) {
    const shown = JSON.stringify(String(sha256).slice(0, 80));
    throw new FleetError('VALIDATION', `${shown} is not a sha256 (64 hex characters)`);
  }
  return sha256.toLowerCase();
}

export class FsBlobStore implements BlobStore {
  private readonly blobDir: string;
  private readonly tempDir: string;
  /** Temp files of uploads in progress here: never swept, however old their last write. */
  private readonly writing = new Set<string>();

  constructor(
    dataDir: string,
    private readonly clock: Clock = systemClock,
    /** Creates an upload's temp file (a test points it at /dev/full to meet a full disk for real). */
    private readonly openTemp: (path: string) => Promise<FileHandle> = (path) => open(path, 'wx', 0o644),
  ) {
    this.blobDir = resolve(dataDir, 'blobs', 'sha256');
    this.tempDir = resolve(dataDir, 'blobs', 'tmp');
  }

  path(sha256: string): string {
    const hex = checkSha256(sha256);
    return join(this.blobDir, hex.slice(0, 2), hex);
  }

  async put(stream: Readable, opts: PutOptions = {}): Promise<PutResult> {
    const expectedSha = opts.expectedSha256 === undefined ? undefined : checkSha256(opts.expectedSha256);
    const { maxSize, expectedSize } = opts;
    if (maxSize !== undefined && expectedSize !== undefined && expectedSize > maxSize) {
      stream.destroy();
      throw tooLarge(maxSize);
    }
    await mkdirDurable(this.tempDir);
    const temp = join(this.tempDir, `${randomBytes(8).toString('hex')}.part`);
    this.writing.add(temp);
    try {
      return await this.write(stream, temp, opts, expectedSha);
    } finally {
      this.writing.delete(temp);
    }
  }

  private async write(
    stream: Readable,
    temp: string,
    opts: PutOptions,
    expectedSha: string | undefined,
  ): Promise<PutResult> {
    const { maxSize, expectedSize } = opts;
    const handle = await this.openTemp(temp);
    let size = 0;
    let sha256: string;
    try {
      const hash = createHash('sha256');
      // Pulling one chunk at a time and awaiting its write is the backpressure: memory stays at a chunk.
      // Leaving the loop early (a throw) destroys the source stream.
      for await (const chunk of stream) {
        const bytes: Uint8Array = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        size += bytes.byteLength;
        if (maxSize !== undefined && size > maxSize) throw tooLarge(maxSize);
        if (expectedSize !== undefined && size > expectedSize) {
          throw new FleetError('VALIDATION', `upload is longer than the expected ${expectedSize} bytes`);
        }
        hash.update(bytes);
        for (let done = 0; done < bytes.byteLength; ) {
          done += (await handle.write(bytes, done)).bytesWritten;
        }
      }
      if (expectedSize !== undefined && size !== expectedSize) {
        throw new FleetError('VALIDATION', `upload ended after ${size} bytes, expected ${expectedSize}`);
      }
      if (opts.refuseEmpty && size === 0) {
        throw emptyUpload();
      }
      sha256 = hash.digest('hex');
      if (expectedSha !== undefined && sha256 !== expectedSha) {
        throw new FleetError('VALIDATION', `sha256 mismatch: expected ${expectedSha}, got ${sha256}`);
      }
      await handle.sync();
    } catch (e) {
      await handle.close();
      await rm(temp, { force: true });
      throw e;
    }
    await handle.close();

    const dest = this.path(sha256);
    // Stored already? Only if its bytes still hash to their name: a damaged blob is replaced by these.
    const stored = await this.check(sha256);
    if (stored.state === 'intact') {
      await rm(temp, { force: true });
    } else {
      await mkdirDurable(dirname(dest));
      // Two concurrent puts of the same bytes may both get here: the second rename swaps in identical
      // content, which a reader holding the first file cannot notice.
      await rename(temp, dest);
      await fsyncDir(dirname(dest));
    }
    return { sha256, size, ...(stored.state === 'corrupt' ? { repaired: stored } : {}) };
  }

  async check(sha256: string): Promise<BlobCheck> {
    const path = this.path(sha256);
    const hash = createHash('sha256');
    let size = 0;
    try {
      for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
        size += (chunk as Buffer).length;
        hash.update(chunk as Buffer);
      }
    } catch (e) {
      if (isNotFound(e)) return { state: 'missing', size: 0 };
      throw e;
    }
    const found = hash.digest('hex');
    return found === sha256.toLowerCase()
      ? { state: 'intact', size }
      : { state: 'corrupt', size, foundSha256: found };
  }

  async has(sha256: string): Promise<boolean> {
    return (await this.stat(sha256)) !== undefined;
  }

  async stat(sha256: string): Promise<BlobInfo | undefined> {
    try {
      const s = await stat(this.path(sha256));
      return s.isFile() ? { sha256: sha256.toLowerCase(), size: s.size } : undefined;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async createReadStream(sha256: string, range: ByteRange = {}): Promise<Readable> {
    const { start = 0, end } = range;
    if (!isOffset(start) || (end !== undefined && (!isOffset(end) || end < start))) {
      throw new FleetError('VALIDATION', `bad byte range ${start}-${end ?? ''}`);
    }
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(this.path(sha256), 'r');
    } catch (e) {
      if (isNotFound(e))
        throw new FleetError('NOT_FOUND', `blob ${sha256} not found`, undefined, { cause: e });
      throw e;
    }
    // The open handle keeps the bytes readable even if the blob is deleted meanwhile.
    // Large reads: fewer syscalls per byte served, which is most of the cost of a download.
    return handle.createReadStream({ start, end, highWaterMark: 128 * 1024 });
  }

  async delete(sha256: string): Promise<boolean> {
    const path = this.path(sha256);
    const existed = await this.has(sha256);
    await rm(path, { force: true });
    if (existed) await fsyncDir(dirname(path));
    return existed;
  }

  /**
   * Removes temp files a crash (or an upload cut off mid-write) left behind: at startup and periodically.
   * Uploads in progress here are never touched; a younger file may be one in another process sharing the folder.
   */
  async sweepTemp(olderThanMs = TEMP_MAX_AGE_MS): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.tempDir);
    } catch (e) {
      if (isNotFound(e)) return 0;
      throw e;
    }
    let removed = 0;
    for (const name of names) {
      const path = join(this.tempDir, name);
      if (this.writing.has(path)) continue;
      const s = await stat(path).catch(() => undefined);
      if (s && s.mtimeMs < this.clock.now() - olderThanMs) {
        await rm(path, { force: true });
        removed++;
      }
    }
    return removed;
  }
}

/** A temp file not written for this long is no upload's any more. */
export const TEMP_MAX_AGE_MS = 3_600_000;

const tooLarge = (max: number) =>
  new FleetError('PAYLOAD_TOO_LARGE', `upload exceeds the limit of ${max} bytes`);

/** An empty artifact can never be installed, and every download of it would be an empty range. */
export const emptyUpload = () =>
  new FleetError('VALIDATION', 'the artifact is empty: send its bytes (at least one) as the request body');

const isOffset = (n: number) => Number.isSafeInteger(n) && n >= 0;

const isNotFound = (e: unknown) => (e as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** mkdir -p whose new folders survive a crash: each one's name is fsynced into its parent. */
async function mkdirDurable(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  if (first === undefined) return;
  for (let d = dir; d.startsWith(first); d = dirname(d)) await fsyncDir(dirname(d));
}
