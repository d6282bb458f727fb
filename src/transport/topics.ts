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
 *
 * `$fleetd/certified/{fingerprint}/…` carries what the embedded broker saw of a sender: the broker moves a
 * message of a device that logged in with a client certificate there (the same topic under that prefix,
 * with the certificate's SHA-256 fingerprint), as an HTTP request carries its TLS client certificate. No
 * client can publish under `$` on the embedded broker, so only the broker itself puts messages there.
 */
export const DEFAULT_TOPIC_ROOT = 'fleetd/v1/devices';

/** The embedded broker's prefix for messages of devices that logged in with a client certificate. */
export const CERTIFIED_PREFIX = '$fleetd/certified';

/** SHA-256 of a certificate's DER in lowercase hex: one topic level. */
const FINGERPRINT = /^[0-9a-f]{64}$/;

/** Several server replicas on one broker share device traffic: each message goes to one of them. */
export const SHARE_GROUP = 'fleetd';

/** What a device publishes: heartbeats, update reports and telemetry (docs/telemetry.md). */
export type UpwardKind = 'heartbeat' | 'reports' | 'telemetry';
const UPWARD: readonly UpwardKind[] = ['heartbeat', 'reports', 'telemetry'];

export class Topics {
  private readonly depth: number;

  constructor(readonly root = DEFAULT_TOPIC_ROOT) {
    this.depth = root.split('/').length;
  }

  device(deviceId: string, kind: UpwardKind | 'inbox'): string {
    return `${this.root}/${deviceId}/${kind}`;
  }

  /**
   * What the bridge subscribes to: in the replicas' share group on an external broker (`shared`); on the
   * embedded broker also the certified topics, which only the embedded broker itself can publish to.
   */
  bridgeFilters(kind: 'embedded' | 'shared' | 'plain'): string[] {
    const plain = UPWARD.map((k) => `${this.root}/+/${k}`);
    if (kind === 'shared') return plain.map((f) => `$share/${SHARE_GROUP}/${f}`);
    return kind === 'embedded' ? [...plain, ...plain.map((f) => `${CERTIFIED_PREFIX}/+/${f}`)] : plain;
  }

  /** The same topic, as the embedded broker forwards it for a device that logged in with this certificate. */
  certified(topic: string, fingerprint: string): string {
    return `${CERTIFIED_PREFIX}/${fingerprint}/${topic}`;
  }

  /**
   * The device and message kind of a device → server topic, and under the certified prefix the fingerprint
   * of the certificate it came with; undefined for anything else.
   */
  parseUpward(
    topic: string,
  ): { deviceId: string; kind: UpwardKind; certificate: string | undefined } | undefined {
    let parts = topic.split('/');
    let certificate: string | undefined;
    if (`${parts[0]}/${parts[1]}` === CERTIFIED_PREFIX) {
      certificate = parts[2];
      if (!certificate || !FINGERPRINT.test(certificate)) return undefined;
      parts = parts.slice(3);
    }
    if (parts.length !== this.depth + 2 || !this.under(parts)) return undefined;
    const deviceId = parts[this.depth]!;
    const kind = parts[this.depth + 1];
    if (!deviceId || !UPWARD.includes(kind as UpwardKind)) return undefined;
    return { deviceId, kind: kind as UpwardKind, certificate };
  }

  /** A device publishes only its own heartbeats and reports: never another device's, never its own inbox. */
  deviceMayPublish(deviceId: string, topic: string): boolean {
    return UPWARD.some((k) => topic === this.device(deviceId, k));
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
