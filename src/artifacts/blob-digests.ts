/**
 * The SHA-1 and MD5 of a stored blob, which hawkBit clients check (SWUpdate: SHA-1) while FleetD keeps only
 * the SHA-256. Computed by reading the blob once and kept by SHA-256: a blob never changes, so every replica
 * computes the same and nothing needs storing.
 */
import { createHash } from 'node:crypto';
import type { BlobStore } from './blob-store.js';

export interface BlobDigests {
  sha1: string;
  md5: string;
}

const KEPT = 1_000;

export class BlobDigestCache {
  private readonly known = new Map<string, Promise<BlobDigests>>();

  constructor(private readonly blobs: Pick<BlobStore, 'createReadStream'>) {}

  of(sha256: string): Promise<BlobDigests> {
    let digests = this.known.get(sha256);
    if (!digests) {
      if (this.known.size >= KEPT) this.known.clear();
      digests = this.compute(sha256);
      // A failed read (a blob missing for now) is tried again next time.
      digests.catch(() => this.known.delete(sha256));
      this.known.set(sha256, digests);
    }
    return digests;
  }

  private async compute(sha256: string): Promise<BlobDigests> {
    const sha1 = createHash('sha1');
    const md5 = createHash('md5');
    for await (const chunk of await this.blobs.createReadStream(sha256)) {
      sha1.update(chunk as Buffer);
      md5.update(chunk as Buffer);
    }
    return { sha1: sha1.digest('hex'), md5: md5.digest('hex') };
  }
}
