/**
 * The dry run's per-device notes on what a device's own update client cannot do of the rollout (core/client-limits.ts):
 * the targets that are SWUpdate or mender-client devices are read by their `client` tag, the first 1,000 listed. A
 * release's variant for a client (core/release-variants.ts) is what that client is given.
 */
import { clientLimits, LIMITED_CLIENTS } from '../core/client-limits.js';
import { parseFilter } from '../core/filter/index.js';
import { isVariantClient, nativeReleaseType } from '../core/release-variants.js';
import type { RolloutSpec } from '../core/rollout/spec.js';
import type { Release, TimeContext } from '../store/store.js';
import type { ServerContext } from './context.js';

const LISTED = 1_000;

export interface ClientLimitJson {
  device_id: string;
  client: string;
  limits: string[];
}

export async function clientLimitsOf(
  c: ServerContext,
  spec: RolloutSpec,
  release: Release,
  ctx: TimeContext,
): Promise<ClientLimitJson[]> {
  // A client the release has a variant for is given the variant: the type it installs.
  const variants = new Set((await c.store.variants.of([release.id])).map((v) => v.client as string));
  const typeFor = (client: string | undefined) =>
    client !== undefined && isVariantClient(client) && variants.has(client)
      ? nativeReleaseType(client)
      : release.type;
  // Nothing to say unless the rollout or its release is one a client cannot follow: no query then.
  const probe = LIMITED_CLIENTS.some((client) => clientLimits(client, spec, typeFor(client)).length > 0);
  if (!probe) return [];
  const clients = LIMITED_CLIENTS.map((client) => `tag.client = ${client}`).join(' or ');
  const text = spec.filter.trim() === '' ? clients : `(${spec.filter}) and (${clients})`;
  const page = await c.store.listDevices({ ...ctx, filter: parseFilter(text), limit: LISTED });
  return page.devices.flatMap((device) => {
    const limits = clientLimits(device.tags.client, spec, typeFor(device.tags.client));
    return limits.length === 0 ? [] : [{ device_id: device.id, client: device.tags.client!, limits }];
  });
}
