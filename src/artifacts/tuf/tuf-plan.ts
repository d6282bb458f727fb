/**
 * Which online roles are due for a new version: pure, from what is published, what should be, the signing
 * keys and the time. Each role is re-signed when its content or key changed or when less than half of its
 * lifetime is left, so a client never meets expired metadata while the server runs; a change below
 * (targets) carries up to snapshot and timestamp, as TUF requires.
 */
import type { OnlineRole } from './tuf-root.js';

export interface TargetEntry {
  length: number;
  sha256: string;
  custom: Record<string, unknown>;
}

export interface Published {
  version: number;
  expiresMs: number;
  signedBy: string[];
}

export interface PublishedTargets extends Published {
  targets: Record<string, TargetEntry>;
}

export interface PublicationState {
  targets?: PublishedTargets | undefined;
  snapshot?: Published | undefined;
  timestamp?: Published | undefined;
}

/** How long each role's metadata is valid; it is re-signed when half of that is left. */
export type Lifetimes = Record<OnlineRole, number>;

export const DEFAULT_LIFETIMES: Lifetimes = {
  targets: 90 * 86_400_000,
  snapshot: 7 * 86_400_000,
  timestamp: 86_400_000,
};

export type Plan = Record<OnlineRole, boolean>;

export function planPublication(
  state: PublicationState,
  wanted: Record<string, TargetEntry>,
  signers: Record<OnlineRole, string>,
  lifetimes: Lifetimes,
  now: number,
): Plan {
  const due = (role: OnlineRole, published: Published | undefined) => {
    if (!published) return true;
    return !published.signedBy.includes(signers[role]) || published.expiresMs - now < lifetimes[role] / 2;
  };
  const targets = due('targets', state.targets) || !sameTargets(state.targets?.targets ?? {}, wanted);
  const snapshot = targets || due('snapshot', state.snapshot);
  const timestamp = snapshot || due('timestamp', state.timestamp);
  return { targets, snapshot, timestamp };
}

function sameTargets(a: Record<string, TargetEntry>, b: Record<string, TargetEntry>): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((k) => {
    const x = a[k];
    const y = b[k];
    return !!x && !!y && x.length === y.length && x.sha256 === y.sha256;
  });
}
