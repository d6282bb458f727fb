/**
 * The fleet-wide egress cap (`--egress-cap`, docs/bandwidth.md) as download slots: the server grants no more
 * downloads at once than the cap can serve at a useful rate each, so a capped fleet gets some downloads done
 * rather than many crawling ones that time out. Pure: the caller counts the downloads under way.
 */

/** The least rate a download is worth starting at when its rollout sets none: 250 kB/s. */
export const DOWNLOAD_FLOOR_BYTES_PER_SEC = 250_000;

/** The hold reason of a device whose download would not fit under the cap. */
export const EGRESS_HOLD_REASON = "the server's egress cap is fully used";

/** How long a held device waits before it asks again: about a download's worth of time. */
export const EGRESS_RETRY_AFTER_SEC = 60;

/**
 * Downloads the cap serves at once at `perDownload` bytes per second each (the rollout's
 * `download_rate_limit`, or the floor when it has none); at least one, so a cap below one download's rate
 * still lets the fleet move.
 */
export function egressSlots(capBytesPerSec: number, perDownload: number | null): number {
  const rate = perDownload ?? DOWNLOAD_FLOOR_BYTES_PER_SEC;
  return Math.max(1, Math.floor(capBytesPerSec / rate));
}

/** Slots still free under the cap while `downloading` downloads (all rollouts) are under way. */
export function egressFree(capBytesPerSec: number, perDownload: number | null, downloading: number): number {
  return Math.max(0, egressSlots(capBytesPerSec, perDownload) - downloading);
}
