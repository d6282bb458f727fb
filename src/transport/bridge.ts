/**
 * The server's side of MQTT: a client of the broker (embedded or external) that takes devices' heartbeats
 * and reports off their topics, handles them exactly as the HTTP device API does, and answers in the
 * device's inbox.
 *
 * The bridge never trusts the broker: every message carries the device credential and is authenticated
 * like an HTTP request (heartbeats in the batcher's group commit, reports against the stored hash), and a
 * credential only speaks for the device named in the topic. So a broker with no ACLs at all still cannot
 * make FleetD accept one device's message as another's; the broker's own authentication and ACLs (which the
 * embedded broker enforces) keep devices out of each other's inboxes.
 *
 * The broker's PUBACK is not the acknowledgement a device waits for: the reply in its inbox is, and it is
 * sent only after the store has committed. A message lost between the two is simply asked again.
 */
import { randomBytes } from 'node:crypto';
import type { IPublishPacket, MqttClient } from 'mqtt';
import { FleetError, isFleetError } from '../core/errors.js';
import { heartbeatFromBody } from '../protocol/device-api.js';
import { errorReply, heartbeatReply, reportReply } from '../protocol/mqtt.js';
import { hashSecret, secretMatches, splitDeviceCredential } from '../registry/credentials.js';
import type { HeartbeatBatcher } from '../registry/heartbeat-batcher.js';
import type { ReportBatcher } from '../registry/report-batcher.js';
import type { Store } from '../store/store.js';
import { connected, connectMqtt, isVersionRefusal } from './connect.js';
import { type DeviceRequest, parseRequest, type UserProperties } from './messages.js';
import type { Topics } from './topics.js';

export interface TransportLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface BridgeOptions {
  /** mqtt:// or mqtts:// URL of the broker; user and password in it are the bridge's own login. */
  url: string;
  store: Store;
  heartbeats: HeartbeatBatcher;
  reports: ReportBatcher;
  heartbeatIntervalSec: number;
  /** Subscribe in the `$share/fleetd/…` group so replicas share the traffic (external brokers). */
  shared: boolean;
  topics: Topics;
  log: TransportLog;
  username?: string;
  password?: string;
}

const UNAUTHENTICATED = 'the device credential is unknown, revoked or wrong';

export class MqttBridge {
  readonly client: MqttClient;
  private readonly inFlight = new Set<Promise<void>>();
  /** Messages this bridge took off the broker (with shared subscriptions, its share of them). */
  handled = 0;

  constructor(private readonly o: BridgeOptions) {
    this.client = connectMqtt(o.url, {
      clientId: `fleetd-server-${randomBytes(6).toString('hex')}`,
      clean: true,
      ...(o.username !== undefined ? { username: o.username } : {}),
      ...(o.password !== undefined ? { password: o.password } : {}),
    });
    this.client.on('connect', () => {
      this.client.subscribe(o.topics.bridgeFilters(o.shared), { qos: 1 }, (error) => {
        if (error) o.log.error({ err: error }, 'MQTT bridge could not subscribe');
      });
    });
    this.client.on('message', (topic, payload, packet) => {
      this.handled++;
      const handling = this.handle(topic, payload, packet).catch((error: unknown) =>
        o.log.error({ err: error, topic }, 'MQTT message failed'),
      );
      this.inFlight.add(handling);
      void handling.finally(() => this.inFlight.delete(handling));
    });
    let lastError = '';
    this.client.on('error', (error) => {
      if (isVersionRefusal(error)) return;
      // One line per kind of failure, not one per reconnect attempt.
      if (error.message !== lastError) o.log.warn({ err: error.message, url: redact(o.url) }, 'MQTT bridge');
      lastError = error.message;
    });
    this.client.on('connect', () => {
      lastError = '';
    });
  }

  /** Waits for the first connection (for the embedded broker, which is known to be there). */
  ready(timeoutMs = 10_000): Promise<void> {
    return connected(this.client, timeoutMs);
  }

  /** Stops taking messages, lets those being handled finish (their replies go out), then disconnects. */
  async close(): Promise<void> {
    this.client.removeAllListeners('message');
    await Promise.allSettled([...this.inFlight]);
    await this.client.endAsync();
  }

  private async handle(topic: string, payload: Buffer, packet: IPublishPacket): Promise<void> {
    const target = this.o.topics.parseUpward(topic);
    if (!target) return; // not ours: only possible with a broker that delivers more than was subscribed
    const inbox = this.o.topics.device(target.deviceId, 'inbox');
    const correlation = packet.properties?.correlationData;
    const send = (message: object) =>
      this.client
        .publishAsync(inbox, JSON.stringify(message), {
          qos: 1,
          ...(correlation ? { properties: { correlationData: correlation } } : {}),
        })
        .catch((error: Error) =>
          this.o.log.warn({ err: error.message, topic: inbox }, 'MQTT reply not sent'),
        );
    const parsed = parseRequest(target.kind, payload, packet.properties?.userProperties as UserProperties);
    if (!parsed.ok) return void (await send(errorReply(parsed.requestId, parsed.error)));
    const request = parsed.request;
    try {
      await send(await this.answer(target.deviceId, request));
    } catch (error) {
      if (!isFleetError(error)) this.o.log.error({ err: error, topic }, 'MQTT message failed');
      const failure = isFleetError(error)
        ? error
        : new FleetError('INTERNAL', 'the server could not handle this', undefined, { cause: error });
      await send(errorReply(request.requestId, failure));
    }
  }

  private async answer(deviceId: string, request: DeviceRequest): Promise<object> {
    const presented = request.credential ? splitDeviceCredential(request.credential) : undefined;
    if (!presented)
      throw new FleetError('UNAUTHENTICATED', `the device credential is missing; ${UNAUTHENTICATED}`);
    if (presented.deviceId !== deviceId) {
      throw new FleetError(
        'FORBIDDEN',
        `this credential belongs to ${presented.deviceId}; a device may only report for itself`,
      );
    }
    if (request.kind === 'heartbeat') {
      const body = request.body;
      if (body.device_id !== deviceId) {
        throw new FleetError(
          'FORBIDDEN',
          `device_id ${body.device_id} is not the topic's device ${deviceId}`,
        );
      }
      const { outcome, offers } = await this.o.heartbeats.submit({
        credentialHash: hashSecret(presented.secret),
        heartbeat: heartbeatFromBody(deviceId, body),
      });
      if (!outcome.ok) throw new FleetError('UNAUTHENTICATED', UNAUTHENTICATED);
      return heartbeatReply(request.requestId, offers, this.o.heartbeatIntervalSec);
    }
    const stored = await this.o.store.credentialHash(deviceId);
    if (!stored || !secretMatches(presented.secret, stored))
      throw new FleetError('UNAUTHENTICATED', UNAUTHENTICATED);
    const b = request.body;
    const outcome = await this.o.reports.submit({
      deviceId,
      updateId: b.update_id,
      report: { seq: b.seq, state: b.state, progress: b.progress ?? undefined, error: b.error ?? undefined },
    });
    return reportReply(request.requestId, b, outcome);
  }
}

/** A broker URL for the log, without its password. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}
