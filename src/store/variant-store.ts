/** The storage port's part for release variants: a release's file for one update client (core/release-variants.ts). */
import type { VariantClient } from '../core/release-variants.js';

export interface ReleaseVariant {
  releaseId: string;
  client: VariantClient;
  size: number;
  /** The variant's blob. */
  sha256: string;
  createdAt: number;
}

export interface ReleaseVariantStore {
  /** Keeps a variant with its event; CONFLICT when the release has one for this client, NOT_FOUND when it is deleted. */
  add(variant: ReleaseVariant, actor: string): Promise<void>;
  /** The variants of these releases, by client name within a release. */
  of(releaseIds: readonly string[]): Promise<ReleaseVariant[]>;
}
