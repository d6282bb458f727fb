/**
 * The MQTT topic layout (docs/mqtt.md) and who may use which topic. Pure: the embedded broker's ACL hooks and
 * the bridge both decide with these functions, so the rules cannot drift apart.
 *
 *   fleetd/v1/devices/{id}/heartbeat   device → server   the HTTP heartbeat body
 *   fleetd/v1/devices/{id}/reports     device → server   a status report body plus its update_id
 *   fleetd/v1/devices/{id}/inbox       server → device   replies, errors and wake-ups
 *
 * The root `fleetd/v1/devices` can be changed, so that several FleetD installations (or test runs) share
 * one broker without hearing each other. Device ids never contain `/`, `+` or `#` (core/device.ts).
 */
export const DEFAULT_TOPIC_ROOT = 'fleetd/v1/devices';

/** Several server replicas on one broker share device traffic: each message goes to one of them. */
export const SHARE_GROUP = 'fleetd';

export type UpwardKind = 'heartbeat' | 'reports';

export class Topics {
  private readonly depth: number;

  constructor(readonly root = DEFAULT_TOPIC_ROOT) {
    this.depth = root.split('/').length;
  }

  device(deviceId: string, kind: UpwardKind | 'inbox'): string {
    return `${this.root}/${deviceId}/${kind}`;
  }

  /** What the bridge subscribes to; `shared` puts it in the replicas' share group (external brokers). */
  bridgeFilters(shared: boolean): string[] {
    const plain = (['heartbeat', 'reports'] as const).map((kind) => `${this.root}/+/${kind}`);
    return shared ? plain.map((f) => `$share/${SHARE_GROUP}/${f}`) : plain;
  }

  /** The device and message kind of a device → server topic; undefined for anything else. */
  parseUpward(topic: string): { deviceId: string; kind: UpwardKind } | undefined {
    const parts = topic.split('/');
    if (parts.length !== this.depth + 2 || !this.under(parts)) return undefined;
    const deviceId = parts[this.depth]!;
    const kind = parts[this.depth + 1];
    if (!deviceId || (kind !== 'heartbeat' && kind !== 'reports')) return undefined;
    return { deviceId, kind };
  }

  /** A device publishes only its own heartbeats and reports: never another device's, never its own inbox. */
  deviceMayPublish(deviceId: string, topic: string): boolean {
    return topic === this.device(deviceId, 'heartbeat') || topic === this.device(deviceId, 'reports');
  }

  /**
   * A device subscribes only under its own prefix. The id level must be the device's id literally, so a
   * wildcard there (`…/devices/+/inbox`) is refused; wildcards below it (`…/{id}/#`) stay its own.
   */
  deviceMaySubscribe(deviceId: string, filter: string): boolean {
    const parts = filter.split('/');
    return parts.length > this.depth + 1 && this.under(parts) && parts[this.depth] === deviceId;
  }

  private under(parts: string[]): boolean {
    return parts.slice(0, this.depth).join('/') === this.root;
  }
}
