/**
 * What a device's own update client cannot do of a rollout (docs/clients/mender.md, docs/hawkbit-ddi.md): the dry
 * run says it per device, so an operator sees before starting that a soft update installs at once on SWUpdate and
 * mender-client devices, or that a release of the wrong type will fail on them. FleetD agents can do everything.
 */

/** The clients FleetD serves, by the `client` tag their API gives them. */
const CLIENTS = {
  swupdate: { name: 'SWUpdate', releaseType: 'swu', releaseWord: '.swu images (type swu)' },
  mender: { name: 'mender-client', releaseType: 'mender', releaseWord: 'Mender artifacts (type mender)' },
} as const;

export const LIMITED_CLIENTS = Object.keys(CLIENTS) as Array<keyof typeof CLIENTS>;

/** Every limit that applies, in words; empty for a FleetD agent (or a rollout the client can follow). */
export function clientLimits(
  client: string | undefined,
  rollout: { strategy: string; action: string },
  releaseType: string,
): string[] {
  const known = client === undefined ? undefined : CLIENTS[client as keyof typeof CLIENTS];
  if (!known) return [];
  const limits: string[] = [];
  if (releaseType !== known.releaseType) {
    limits.push(
      `${known.name} installs only ${known.releaseWord}: this release (type ${releaseType}) will fail`,
    );
  }
  if (rollout.strategy === 'blue_green' || rollout.action === 'download_only') {
    limits.push(`${known.name} cannot stage a download: it is not offered the staging step and waits`);
  }
  if (rollout.action === 'soft') {
    limits.push(`${known.name} has no consent step: a soft update installs at once`);
  }
  return limits;
}
