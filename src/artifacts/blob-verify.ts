/**
 * Checks that the stored bytes of releases, and of their variants (a release's file for one update client), still
 * hash to their sha256: for `fleetd artifact verify`, the background scrub and uploads that find their blob
 * already stored. A damaged blob is reported by hash, with the releases and variants that use it, and becomes an
 * event.
 */
import type { NewEvent, Release } from '../store/store.js';
import type { ReleaseVariant } from '../store/variant-store.js';
import type { BlobCheck } from './blob-store.js';

/** A variant using a blob: its release (`name@version`) and the update client it is for. */
export interface VariantUse {
  release: string;
  client: string;
}

/** One stored blob and the releases (`name@version`) whose artifact it is, and the variants whose file it is. */
export interface ReleasedBlob {
  sha256: string;
  size: number;
  releases: string[];
  variants?: VariantUse[];
}

export interface DamagedBlob extends ReleasedBlob {
  problem: 'missing' | 'altered';
  /** The stored file's size now (0 when missing). */
  foundSize: number;
  /** What the stored bytes hash to now (when altered). */
  foundSha256?: string;
}

/**
 * The distinct blobs of these releases and of their variants (those of other releases are left out), in hash
 * order (the scrub's order).
 */
export function blobsOf(
  releases: readonly Release[],
  variants: readonly ReleaseVariant[] = [],
): ReleasedBlob[] {
  const byHash = new Map<string, ReleasedBlob>();
  const named = new Map<string, string>();
  for (const r of releases) {
    const blob = byHash.get(r.sha256) ?? { sha256: r.sha256, size: r.size, releases: [] };
    blob.releases.push(`${r.name}@${r.version}`);
    byHash.set(r.sha256, blob);
    named.set(r.id, `${r.name}@${r.version}`);
  }
  for (const v of variants) {
    const release = named.get(v.releaseId);
    if (release === undefined) continue;
    const blob = byHash.get(v.sha256) ?? { sha256: v.sha256, size: v.size, releases: [] };
    blob.variants = [...(blob.variants ?? []), { release, client: v.client }];
    byHash.set(v.sha256, blob);
  }
  return [...byHash.values()].sort((a, b) => (a.sha256 < b.sha256 ? -1 : a.sha256 > b.sha256 ? 1 : 0));
}

/** The damage a check found, or undefined when the blob is intact. */
export function damageOf(blob: ReleasedBlob, check: BlobCheck): DamagedBlob | undefined {
  if (check.state === 'intact') return undefined;
  return check.state === 'missing'
    ? { ...blob, problem: 'missing', foundSize: 0 }
    : { ...blob, problem: 'altered', foundSize: check.size, foundSha256: check.foundSha256 };
}

export function describeDamage(d: DamagedBlob): string {
  const uses = [
    ...(d.releases.length > 0 ? [`the artifact of ${d.releases.join(', ')}`] : []),
    ...(d.variants ?? []).map((v) => `the ${v.client} variant of ${v.release}`),
  ];
  const used = uses.join(' and ');
  return d.problem === 'missing'
    ? `${used} (sha256 ${d.sha256}) is missing from the blob store`
    : `${used} is damaged: its ${d.foundSize} stored bytes hash to ${d.foundSha256}, not ${d.sha256}`;
}

export const damageJson = (d: DamagedBlob) => ({
  sha256: d.sha256,
  size: d.size,
  releases: d.releases,
  ...(d.variants?.length ? { variants: d.variants } : {}),
  problem: d.problem,
  found_size: d.foundSize,
  ...(d.foundSha256 ? { found_sha256: d.foundSha256 } : {}),
});

/**
 * `artifact.corrupted`: a check found the blob damaged (devices would refuse its download's hash);
 * `artifact.repaired`: an upload of the right bytes replaced a damaged blob.
 */
export function damageEvent(
  type: 'artifact.corrupted' | 'artifact.repaired',
  d: DamagedBlob,
  at: number,
  actor: string,
): NewEvent {
  return { at, type, deviceId: null, rolloutId: null, actor, reason: describeDamage(d), data: damageJson(d) };
}
