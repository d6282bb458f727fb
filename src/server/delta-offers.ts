/**
 * Adds a delta to the heartbeat's offers: for each update that downloads, the smallest delta built to its
 * release from the version the device reports running. The device still checks everything (docs/delta-updates.md).
 */
import { deltaDownloadPath } from '../protocol/deltas.js';
import type { PendingUpdateJson } from '../protocol/device-api.js';
import type { UpdateOffer } from '../store/store.js';
import type { ServerContext } from './context.js';

export async function withDeltas(
  c: ServerContext,
  runningVersion: string | undefined,
  offers: readonly UpdateOffer[],
  json: PendingUpdateJson[],
): Promise<PendingUpdateJson[]> {
  // Most heartbeats carry no offer: they cost no query.
  if (!c.deltas || runningVersion === undefined || offers.length === 0) return json;
  const out: PendingUpdateJson[] = [];
  for (const [i, pending] of json.entries()) {
    const offer = offers[i];
    const downloads = pending.action !== 'switch';
    const delta =
      offer && downloads ? await c.store.deltas.forDevice(offer.release.id, runningVersion) : undefined;
    out.push(
      delta
        ? {
            ...pending,
            delta: {
              url: deltaDownloadPath(delta.sha256),
              tool: delta.tool,
              size: delta.size,
              sha256: delta.sha256,
              source_sha256: JSON.parse(delta.manifest).source_sha256 as string,
              manifest: delta.manifest,
              signature: delta.signature,
            },
          }
        : pending,
    );
  }
  return out;
}
