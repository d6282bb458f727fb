/** The storage port's part for binary deltas between releases (docs/delta-updates.md). */
import type { DeltaTool } from '../core/delta.js';

export interface Delta {
  id: string;
  sourceReleaseId: string;
  targetReleaseId: string;
  /** The source release's version: a device reporting it is offered this delta. */
  sourceVersion: string;
  tool: DeltaTool;
  size: number;
  sha256: string;
  /** The canonical delta manifest and its Ed25519 signature. */
  manifest: string;
  signature: string;
  keyId: string;
  buildMs: number;
  createdAt: number;
}

export type NewDelta = Omit<Delta, 'sourceVersion'>;

export interface DeltaStore {
  /** Keeps a built delta; a second record of the same pair and tool changes nothing. */
  record(delta: NewDelta): Promise<void>;
  /** The deltas to a release, smallest first, of source releases not deleted. */
  toTarget(targetReleaseId: string): Promise<Delta[]>;
  /** The delta to offer a device running `sourceVersion` of the target's artifact, if one was built. */
  forDevice(targetReleaseId: string, sourceVersion: string): Promise<Delta | undefined>;
  /** Deltas whose bytes are this blob (what a device may download). */
  bySha256(sha256: string): Promise<Delta[]>;
  /** The versions the rollout's devices ran when they were assigned (the sources worth a delta). */
  versionsInRollout(rolloutId: string): Promise<string[]>;
}
