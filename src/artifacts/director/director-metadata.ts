/**
 * What the director signs for one device (docs/signing.md, "The director"): targets naming exactly the images
 * of the device's open updates (`name@version`, length, sha256, and `custom.device_id`), then snapshot and
 * timestamp over them. No I/O: given what was signed before, what is wanted, the keys and the time, it says
 * whether anything is due (tuf-plan.ts decides, as for the image repository) and returns the new documents,
 * each version one above the last, so a device's versions only grow.
 */
import { createHash } from 'node:crypto';
import { Metadata, MetadataKind, MetaFile, Snapshot, TargetFile, Targets, Timestamp } from '@tufjs/models';
import type { DirectorMetadata } from '../../store/director-store.js';
import type { Release } from '../../store/store.js';
import { type Lifetimes, type PublicationState, planPublication, type TargetEntry } from '../tuf/tuf-plan.js';
import type { OnlineRole } from '../tuf/tuf-root.js';
import { DAY_MS, tufExpiry } from '../tuf/tuf-time.js';
import type { OnlineSigners } from '../tuf/tuf-trusted-root.js';

export type DirectorSigners = OnlineSigners;

/**
 * Per-device metadata is signed when the device asks, so short lifetimes cost nothing: a server that stops
 * signing (or a stolen timestamp key) can hold a device on its current instruction for a day at most.
 */
export const DIRECTOR_LIFETIMES: Lifetimes = { targets: 7 * DAY_MS, snapshot: 7 * DAY_MS, timestamp: DAY_MS };

const SPEC_VERSION = '1.0.31';

/** The director's targets for a device: the images of its open updates, each naming the device. */
export function directorTargets(deviceId: string, images: Release[]): Record<string, TargetEntry> {
  const out: Record<string, TargetEntry> = {};
  for (const r of images) {
    out[`${r.name}@${r.version}`] = {
      length: r.size,
      sha256: r.sha256,
      custom: { device_id: deviceId, hardware: r.hardware },
    };
  }
  return out;
}

/** What was signed before, in the planner's terms. */
export function publicationState(stored: DirectorMetadata | undefined): PublicationState {
  if (!stored) return {};
  const targets = Metadata.fromJSON(MetadataKind.Targets, JSON.parse(stored.targets));
  const snapshot = Metadata.fromJSON(MetadataKind.Snapshot, JSON.parse(stored.snapshot));
  const timestamp = Metadata.fromJSON(MetadataKind.Timestamp, JSON.parse(stored.timestamp));
  const info = (md: Metadata<Targets | Snapshot | Timestamp>) => ({
    version: md.signed.version,
    expiresMs: Date.parse(md.signed.expires),
    signedBy: Object.keys(md.signatures),
  });
  const entries: Record<string, TargetEntry> = {};
  for (const [path, f] of Object.entries(targets.signed.targets)) {
    entries[path] = { length: f.length, sha256: f.hashes.sha256 ?? '', custom: f.custom };
  }
  return {
    targets: { ...info(targets), targets: entries },
    snapshot: info(snapshot),
    timestamp: info(timestamp),
  };
}

/** The device's next metadata, or undefined when what it has is current and far enough from expiry. */
export function signDirectorMetadata(input: {
  deviceId: string;
  stored: DirectorMetadata | undefined;
  wanted: Record<string, TargetEntry>;
  signers: DirectorSigners;
  lifetimes: Lifetimes;
  now: number;
}): DirectorMetadata | undefined {
  const { stored, wanted, signers, lifetimes, now } = input;
  const keyIds = {
    targets: signers.targets.keyId,
    snapshot: signers.snapshot.keyId,
    timestamp: signers.timestamp.keyId,
  };
  const plan = planPublication(publicationState(stored), wanted, keyIds, lifetimes, now);
  if (!plan.timestamp) return undefined;
  const expires = (role: OnlineRole) => tufExpiry(now + lifetimes[role]);
  const signed = (md: Metadata<Targets | Snapshot | Timestamp>, role: OnlineRole) => {
    md.sign(signers[role].sign, false);
    return JSON.stringify(md.toJSON());
  };

  let targetsVersion = stored?.targetsVersion ?? 0;
  let targetsText = stored?.targets;
  if (plan.targets || targetsText === undefined) {
    targetsVersion += 1;
    const targets = new Targets({
      version: targetsVersion,
      specVersion: SPEC_VERSION,
      expires: expires('targets'),
    });
    for (const [path, t] of Object.entries(wanted)) {
      targets.addTarget(
        new TargetFile({
          path,
          length: t.length,
          hashes: { sha256: t.sha256 },
          unrecognizedFields: { custom: t.custom as never },
        }),
      );
    }
    targetsText = signed(new Metadata(targets), 'targets');
  }
  let snapshotVersion = stored?.snapshotVersion ?? 0;
  let snapshotText = stored?.snapshot;
  if (plan.snapshot || plan.targets || snapshotText === undefined) {
    snapshotVersion += 1;
    const snapshot = new Snapshot({
      version: snapshotVersion,
      specVersion: SPEC_VERSION,
      expires: expires('snapshot'),
      meta: { 'targets.json': metaFile(targetsVersion, targetsText) },
    });
    snapshotText = signed(new Metadata(snapshot), 'snapshot');
  }
  const timestampVersion = (stored?.timestampVersion ?? 0) + 1;
  const timestamp = new Timestamp({
    version: timestampVersion,
    specVersion: SPEC_VERSION,
    expires: expires('timestamp'),
    snapshotMeta: metaFile(snapshotVersion, snapshotText),
  });
  return {
    deviceId: input.deviceId,
    targetsVersion,
    snapshotVersion,
    timestampVersion,
    targets: targetsText,
    snapshot: snapshotText,
    timestamp: signed(new Metadata(timestamp), 'timestamp'),
    updatedAt: now,
  };
}

const metaFile = (version: number, text: string) =>
  new MetaFile({
    version,
    length: Buffer.byteLength(text),
    hashes: { sha256: createHash('sha256').update(text).digest('hex') },
  });
