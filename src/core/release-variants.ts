/**
 * Which file of a release a device installs, by the update client it runs (docs/clients/). A release is one
 * signed artifact of one type; SWUpdate installs only `.swu` images and mender-client only Mender artifacts, so a
 * release may carry a variant per client: the same software in the form that client reads. One rollout then
 * reaches FleetD agents, SWUpdate devices and Mender devices alike. A device whose client can read neither the
 * release nor a variant of it fails its update with the reason, instead of being handed a file it cannot install.
 */

/** The clients a release may carry a variant for, by the `client` tag their device API gives them. */
export const VARIANT_CLIENTS = ['swupdate', 'mender'] as const;
export type VariantClient = (typeof VARIANT_CLIENTS)[number];

const CLIENTS: Record<VariantClient, { name: string; releaseType: string; file: string }> = {
  swupdate: { name: 'SWUpdate', releaseType: 'swu', file: '.swu image' },
  mender: { name: 'mender-client', releaseType: 'mender', file: 'Mender artifact' },
};

export function isVariantClient(client: string): client is VariantClient {
  return (VARIANT_CLIENTS as readonly string[]).includes(client);
}

/** The release type a client installs as it is (a `.swu` for SWUpdate). */
export function nativeReleaseType(client: VariantClient): string {
  return CLIENTS[client].releaseType;
}

export interface ReleaseFacts {
  name: string;
  version: string;
  type: string;
}

export type FileChoice<V> =
  /** The release's own artifact. */
  | { kind: 'release' }
  | { kind: 'variant'; variant: V }
  /** Nothing this client can install: the update fails with `reason`. */
  | { kind: 'missing'; reason: string };

/**
 * The file a device running `client` (undefined: a FleetD agent, which installs every type) is given of
 * `release`: the release itself when its type is what the client installs, else the client's variant.
 */
export function fileForClient<V extends { client: string }>(
  client: string | undefined,
  release: ReleaseFacts,
  variants: readonly V[],
): FileChoice<V> {
  if (client === undefined || !isVariantClient(client)) return { kind: 'release' };
  const known = CLIENTS[client];
  if (release.type === known.releaseType) return { kind: 'release' };
  const variant = variants.find((v) => v.client === client);
  if (variant) return { kind: 'variant', variant };
  return {
    kind: 'missing',
    reason:
      `release ${release.name}@${release.version} (type ${release.type}) has no ${client} variant: ` +
      `${known.name} installs only a ${known.file} (add one with: fleetd artifact add-variant ` +
      `${release.name}@${release.version} ${client} FILE)`,
  };
}

/** Why a variant for `client` cannot be added to a release of `releaseType`; undefined when it can. */
export function variantProblem(client: string, releaseType: string): string | undefined {
  if (!isVariantClient(client)) {
    return `client "${client}" has no variants: give one of ${VARIANT_CLIENTS.join(', ')}`;
  }
  if (releaseType === CLIENTS[client].releaseType) {
    return `the release is itself of type ${releaseType}: ${CLIENTS[client].name} devices install it as it is`;
  }
  return undefined;
}
