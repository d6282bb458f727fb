/**
 * The MQTT topic layout (docs/mqtt.md) and who may use which topic. Pure: the embedded broker's ACL hooks and
 * the bridge both decide with these functions, so the rules cannot drift apart.
 *
 *   fleetd/v1/devices/{id}/heartbeat   device → server   the HTTP heartbeat body
 *   fleetd/v1/devices/{id}/reports     device → server   a status report body plus its update_id
 *   fleetd/v1/devices/{id}/inbox       server → device   replies, errors and wake-ups
 */
export const TOPIC_ROOT = 'fleetd/v1/devices';

/** Several server replicas on one broker share device traffic: each message goes to one of them. */
export const SHARE_GROUP = 'fleetd';

export type UpwardKind = 'heartbeat' | 'reports';

export function deviceTopic(deviceId: string, kind: UpwardKind | 'inbox'): string {
  return `${TOPIC_ROOT}/${deviceId}/${kind}`;
}

/** What the bridge subscribes to; `shared` puts it in the replicas' share group (external brokers). */
export function bridgeFilters(shared: boolean): string[] {
  const plain = (['heartbeat', 'reports'] as const).map((kind) => `${TOPIC_ROOT}/+/${kind}`);
  return shared ? plain.map((f) => `$share/${SHARE_GROUP}/${f}`) : plain;
}

/** The device and message kind of a device → server topic; undefined for anything else. */
export function parseUpwardTopic(topic: string): { deviceId: string; kind: UpwardKind } | undefined {
  const parts = topic.split('/');
  if (parts.length !== 5 || `${parts[0]}/${parts[1]}/${parts[2]}` !== TOPIC_ROOT) return undefined;
  const [, , , deviceId, kind] = parts;
  if (!deviceId || (kind !== 'heartbeat' && kind !== 'reports')) return undefined;
  return { deviceId, kind };
}

/** A device publishes only its own heartbeats and reports: never another device's, never its own inbox. */
export function deviceMayPublish(deviceId: string, topic: string): boolean {
  return topic === deviceTopic(deviceId, 'heartbeat') || topic === deviceTopic(deviceId, 'reports');
}

/**
 * A device subscribes only under its own prefix. The id level must be the device's id literally, so a
 * wildcard there (`fleetd/v1/devices/+/inbox`) is refused; wildcards below it (`…/{id}/#`) stay its own.
 */
export function deviceMaySubscribe(deviceId: string, filter: string): boolean {
  const parts = filter.split('/');
  return parts.length >= 5 && `${parts[0]}/${parts[1]}/${parts[2]}` === TOPIC_ROOT && parts[3] === deviceId;
}
