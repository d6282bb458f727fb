/**
 * The server's side of MQTT: a client of the broker (embedded or external) that takes devices' heartbeats
 * and reports off their topics, handles them exactly as the HTTP device API does, and answers in the
 * device's inbox.
 *
 * The bridge never trusts the broker's ACLs: every message is authenticated like an HTTP request
 * (heartbeats in the batcher's group commit, reports against the registry), and its proof only speaks for
 * the device named in the topic. The proof is the device credential in the message, or, for a device that
 * logged in to the embedded broker with a client certificate, that certificate's fingerprint, which the
 * broker (in this process, reached over an in-process link) puts in the topic (topics.ts). So a broker
 * with no ACLs at all still cannot make FleetD accept one device's message as another's; the broker's own
 * authentication and ACLs (which the embedded broker enforces) keep devices out of each other's inboxes.
 *
 * The broker's PUBACK is not the acknowledgement a device waits for: the reply in its inbox is, and it is
 * sent only after the store has committed. A message lost between the two is simply asked again.
 */

import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { type IClientOptions, type IPublishPacket, MqttClient } from 'mqtt';
import { type Clock, systemClock } from '../core/clock.js';
import { nextHeartbeatSec } from '../core/connectivity.js';
import { FleetError, isFleetError } from '../core/errors.js';
import { DEFAULT_TELEMETRY_RETENTION } from '../core/telemetry.js';
import { heartbeatFromBody } from '../protocol/device-api.js';
import { errorReply, heartbeatReply, reportReply, telemetryReply } from '../protocol/mqtt.js';
import { hashSecret, secretMatches, splitDeviceCredential } from '../registry/credentials.js';
import type { HeartbeatBatcher } from '../registry/heartbeat-batcher.js';
import type { ReportBatcher } from '../registry/report-batcher.js';
import { TelemetryBatcher } from '../registry/telemetry-batcher.js';
import type { Store } from '../store/store.js';
import type { DeviceAuthMode } from './broker-access.js';
import { connected, connectMqtt, isVersionRefusal } from './connect.js';
import { type DeviceRequest, parseRequest, type UserProperties } from './messages.js';
import type { Topics } from './topics.js';

export interface TransportLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** What the bridge trusts an external broker by over mqtts://, and its own client certificate (PEM text). */
export interface BrokerClientTls {
  caPems: string[];
  certificatePem?: string | undefined;
  privateKeyPem?: string | undefined;
}

export interface BridgeOptions {
  /** mqtt:// or mqtts:// URL of the broker; user and password in it are the bridge's own login. */
  url: string;
  /** For mqtts://: the broker's CA, and the bridge's client certificate if the broker asks for one. */
  tls?: BrokerClientTls | undefined;
  /**
   * The embedded broker's in-process link, instead of the URL: only over it does the bridge take the
   * certified topics, where the broker names the client certificate a message came with.
   */
  link?: (() => Duplex) | undefined;
  /** 'mtls': a message proven by a bearer credential is refused (the default 'any' takes both). */
  deviceAuth?: DeviceAuthMode | undefined;
  store: Store;
  heartbeats: HeartbeatBatcher;
  reports: ReportBatcher;
  heartbeatIntervalSec: number;
  /** Telemetry reports are timed by it; the system clock by default. */
  clock?: Clock | undefined;
  /** The shortest interval between a device's telemetry reports (default 1 min). */
  telemetryMinIntervalMs?: number | undefined;
  /** Subscribe in the `$share/fleetd/…` group so replicas share the traffic (external brokers). */
  shared: boolean;
  topics: Topics;
  log: TransportLog;
  username?: string;
  password?: string;
}

const UNAUTHENTICATED = 'the device credential is unknown, revoked or wrong';
const CERTIFICATE_REFUSED = 'the client certificate is unknown or revoked, or its device decommissioned';

export class MqttBridge {
  readonly client: MqttClient;
  private readonly inFlight = new Set<Promise<void>>();
  /** Messages this bridge took off the broker (with shared subscriptions, its share of them). */
  handled = 0;
  private readonly telemetryReports: TelemetryBatcher;

  constructor(private readonly o: BridgeOptions) {
    this.telemetryReports = new TelemetryBatcher(
      o.store,
      o.clock ?? systemClock,
      o.telemetryMinIntervalMs ?? DEFAULT_TELEMETRY_RETENTION.minIntervalMs,
    );
    const options: IClientOptions = {
      clientId: `fleetd-server-${randomBytes(6).toString('hex')}`,
      clean: true,
      ...(o.username !== undefined ? { username: o.username } : {}),
      ...(o.password !== undefined ? { password: o.password } : {}),
      ...(o.tls
        ? {
            ...(o.tls.caPems.length > 0 ? { ca: o.tls.caPems } : {}),
            ...(o.tls.certificatePem ? { cert: o.tls.certificatePem } : {}),
            ...(o.tls.privateKeyPem ? { key: o.tls.privateKeyPem } : {}),
          }
        : {}),
    };
    // The embedded broker (aedes) speaks MQTT 3.1.1 only.
    this.client = o.link
      ? new MqttClient(o.link, { protocolVersion: 4, reconnectPeriod: 2_000, ...options })
      : connectMqtt(o.url, options);
    const filters = o.topics.bridgeFilters(o.link ? 'embedded' : o.shared ? 'shared' : 'plain');
    this.client.on('connect', () => {
      this.client.subscribe(filters, { qos: 1 }, (error) => {
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
    if (target.certificate !== undefined && !this.o.link) return; // only the embedded broker may say so
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
      await send(
        target.certificate !== undefined
          ? await this.answerCertified(target.deviceId, target.certificate, request)
          : await this.answer(target.deviceId, request),
      );
    } catch (error) {
      if (!isFleetError(error)) this.o.log.error({ err: error, topic }, 'MQTT message failed');
      const failure = isFleetError(error)
        ? error
        : new FleetError('INTERNAL', 'the server could not handle this', undefined, { cause: error });
      await send(errorReply(request.requestId, failure));
    }
  }

  /** A message proven by the client certificate the device logged in with (its SHA-256 fingerprint). */
  private async answerCertified(
    deviceId: string,
    fingerprint: string,
    request: DeviceRequest,
  ): Promise<object> {
    if (request.kind === 'heartbeat') {
      assertOwnHeartbeat(deviceId, request.body.device_id);
      const { outcome, offers, commands } = await this.o.heartbeats.submit({
        certificateFingerprint: fingerprint,
        heartbeat: heartbeatFromBody(deviceId, request.body),
      });
      if (!outcome.ok) throw new FleetError('UNAUTHENTICATED', CERTIFICATE_REFUSED);
      return heartbeatReply(
        request.requestId,
        offers,
        nextHeartbeatSec(outcome.heartbeatIntervalMs, this.o.heartbeatIntervalSec),
        commands,
      );
    }
    if ((await this.o.store.certificates.deviceOf(fingerprint)) !== deviceId)
      throw new FleetError('UNAUTHENTICATED', CERTIFICATE_REFUSED);
    return this.upward(deviceId, request);
  }

  private async answer(deviceId: string, request: DeviceRequest): Promise<object> {
    if (this.o.deviceAuth === 'mtls') {
      throw new FleetError(
        'UNAUTHENTICATED',
        'this server takes devices by client certificate only: bearer credentials are off',
      );
    }
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
      assertOwnHeartbeat(deviceId, request.body.device_id);
      const { outcome, offers, commands } = await this.o.heartbeats.submit({
        credentialHash: hashSecret(presented.secret),
        heartbeat: heartbeatFromBody(deviceId, request.body),
      });
      if (!outcome.ok) throw new FleetError('UNAUTHENTICATED', UNAUTHENTICATED);
      return heartbeatReply(
        request.requestId,
        offers,
        nextHeartbeatSec(outcome.heartbeatIntervalMs, this.o.heartbeatIntervalSec),
        commands,
      );
    }
    const stored = await this.o.store.credentialHash(deviceId);
    if (!stored || !secretMatches(presented.secret, stored))
      throw new FleetError('UNAUTHENTICATED', UNAUTHENTICATED);
    return this.upward(deviceId, request);
  }

  /** An authenticated update report or telemetry report. */
  private upward(deviceId: string, request: Exclude<DeviceRequest, { kind: 'heartbeat' }>): Promise<object> {
    return request.kind === 'telemetry' ? this.telemetry(deviceId, request) : this.report(deviceId, request);
  }

  /** As the HTTP API: a report sooner than the minimum interval is answered `accepted: false` with the wait. */
  private async telemetry(deviceId: string, request: DeviceRequest & { kind: 'telemetry' }): Promise<object> {
    const minIntervalMs = this.o.telemetryMinIntervalMs ?? DEFAULT_TELEMETRY_RETENTION.minIntervalMs;
    const outcome = await this.telemetryReports.submit(deviceId, request.body);
    const retryAfterSec = Math.ceil((outcome.accepted ? minIntervalMs : outcome.retryAfterMs) / 1000);
    return telemetryReply(request.requestId, { accepted: outcome.accepted, retryAfterSec });
  }

  private async report(deviceId: string, request: DeviceRequest & { kind: 'reports' }): Promise<object> {
    const b = request.body;
    const outcome = await this.o.reports.submit({
      deviceId,
      updateId: b.update_id,
      report: { seq: b.seq, state: b.state, progress: b.progress ?? undefined, error: b.error ?? undefined },
    });
    return reportReply(request.requestId, b, outcome);
  }
}

function assertOwnHeartbeat(topicDevice: string, bodyDevice: string): void {
  if (bodyDevice !== topicDevice)
    throw new FleetError('FORBIDDEN', `device_id ${bodyDevice} is not the topic's device ${topicDevice}`);
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
