/**
 * The port of the director's per-device metadata (shared/director-metadata.ts, docs/signing.md "The director"):
 * the targets, snapshot and timestamp the director signed for each device, and which images it must name.
 */
import type { Release } from './store.js';

/** The director's current signed metadata for one device (JSON text, as served). */
export interface DirectorMetadata {
  deviceId: string;
  targetsVersion: number;
  snapshotVersion: number;
  timestampVersion: number;
  targets: string;
  snapshot: string;
  timestamp: string;
  updatedAt: number;
}

export interface DirectorStore {
  get(deviceId: string): Promise<DirectorMetadata | undefined>;
  /**
   * Stores the device's new metadata when what is stored is still what the signer started from (timestamp
   * version `previous`, or nothing when undefined); false when another writer (a replica) got there first.
   */
  save(metadata: DirectorMetadata, previous: number | undefined): Promise<boolean>;
  /** The releases of the device's open updates: the images the director names for it now. */
  imagesFor(deviceId: string): Promise<Release[]>;
}
