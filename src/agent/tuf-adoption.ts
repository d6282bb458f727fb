/**
 * Moving to TUF through a rollout (docs/signing.md, "Moving a fleet to TUF"). An agent provisioned before TUF
 * trusts the pinned release key alone; an update offered with `adopt_tuf` makes it fetch the root the server
 * has signed for migration, check that signature with the pinned key, and — once TUF has verified that very
 * release from this root — keep the root as its trust anchor (`STATE_DIR/tuf-root.json`), for every later
 * release and across restarts, exactly as if it had been provisioned with it.
 */

import type { KeyObject } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import type { DeviceClient } from './client.js';
import { isNotFound, writeFileAtomic } from './fsutil.js';
import type { StateDir } from './state-dir.js';
import type { TufVerifier } from './tuf-verifier.js';
import { signatureValid, type Verdict } from './verify.js';

/** The root adopted through a rollout, in the state folder. */
export const ADOPTED_ROOT_FILE = 'tuf-root.json';
/** tuf-js's trusted metadata (TufVerifier's metadataDir). */
export const TUF_METADATA_DIR = 'tuf';

/** A root being adopted: tried on one release, then kept or dropped. */
export interface TufAdoption {
  verifier: TufVerifier;
  /** TUF verified the release: the root is trusted from now on. */
  keep(): Promise<void>;
  /** It did not: forget the root and what tuf-js fetched from it. */
  drop(): Promise<void>;
}

export type TufAdopter = () => Promise<Verdict<TufAdoption>>;

export async function readAdoptedRoot(state: StateDir): Promise<string | undefined> {
  try {
    return await readFile(state.path(ADOPTED_ROOT_FILE), 'utf8');
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

export function tufAdopter(deps: {
  state: StateDir;
  client: Pick<DeviceClient, 'tufMigration'>;
  publicKey: KeyObject;
  verifierFor: (rootJson: string) => TufVerifier;
}): TufAdopter {
  return async () => {
    const { root, signature } = await deps.client.tufMigration();
    // The pinned key is the only thing this device trusts yet: nothing of the root counts before it checks.
    if (!signatureValid(root, signature, deps.publicKey)) {
      return { ok: false, reason: 'TUF migration: the root is not signed by the pinned release key' };
    }
    const metadataDir = deps.state.path(TUF_METADATA_DIR);
    await rm(metadataDir, { recursive: true, force: true });
    return {
      ok: true,
      value: {
        verifier: deps.verifierFor(root),
        keep: () => writeFileAtomic(deps.state.path(ADOPTED_ROOT_FILE), root),
        drop: () => rm(metadataDir, { recursive: true, force: true }),
      },
    };
  };
}
