/**
 * Heartbeats and status reports over MQTT (docs/mqtt.md), with HTTP whenever MQTT cannot answer: while the
 * broker is unreachable, and for any question whose reply does not come in time. So MQTT only ever makes
 * the device hear sooner; it never makes it hear less. Enrolment and downloads stay on HTTP.
 *
 * A report counts as delivered only once the server's reply is in the inbox, exactly as over HTTP; a
 * report asked over MQTT and then again over HTTP is harmless, the server keeps the first by its `seq`.
 *
 * Over mqtts:// the broker's certificate is checked against the CA given (or the system's CAs), always.
 * A device with a client certificate logs in with it: FleetD's embedded broker knows the device by it, so
 * a device with a certificate and no credential is served too. A credential, when the device has one, is
 * still sent with each message, as an external broker's word on who sent it is not taken (docs/mqtt.md).
 *
 * Self-contained (it knows the protocol, not the server's code), so a simulator can run many of these.
 */
import { randomBytes } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import {
  type DeviceClient,
  type HeartbeatAnswer,
  type HeartbeatBody,
  type PendingUpdate,
  ProtocolError,
  parseCommands,
  parsePendingUpdate,
} from './client.js';
import type { Logger } from './log.js';
import type { Report, SendOutcome } from './outbox.js';

/** TLS for mqtts:// (PEM text): the CAs the broker's certificate must chain to, and the device's own. */
export interface MqttChannelTls {
  caPems: string[];
  /** The device's client certificate and its key: the device logs in as the device the certificate names. */
  certificatePem?: string | undefined;
  privateKeyPem?: string | undefined;
}

export interface MqttChannelOptions {
  /** mqtt://host:1883 (mqtts://host:8883 for TLS). */
  url: string;
  /**
   * For mqtts://, read at each new connection (so a renewed certificate is used once `reconnect()` is
   * called). Without it mqtts:// trusts the system's CAs and the device logs in with its credential.
   */
  tls?: (() => MqttChannelTls) | undefined;
  deviceId: string;
  /** Carries the credential, and every call MQTT cannot answer. */
  http: DeviceClient;
  log: Logger;
  /** Called on a wake-up from the server, and on each (re)connection: heartbeat now. */
  onWake: () => void;
  /** How long to wait for a reply before asking over HTTP instead (default 10 s). */
  replyTimeoutMs?: number;
  /** The server's topic root, when it is not the default `fleetd/v1/devices`. */
  topicRoot?: string;
}

/** Error codes a report can never get past however often it is sent (HTTP 400, 404, 409, 413). */
const FINAL_REFUSALS = new Set([
  'VALIDATION',
  'MALFORMED_JSON',
  'NOT_FOUND',
  'TRANSITION_NOT_ALLOWED',
  'CONFLICT',
  'PAYLOAD_TOO_LARGE',
]);
const HTTP_STATUS: Record<string, number> = { UNAUTHENTICATED: 401, FORBIDDEN: 403, NOT_FOUND: 404 };
/** CONNACK codes for "not this protocol version" (3.1.1 and 5): retry with MQTT 3.1.1. */
const UNSUPPORTED_VERSION = new Set([1, 132]);

type InboxMessage = Record<string, unknown> & { type?: unknown; request_id?: unknown };

export class MqttChannel {
  private client: MqttClient | undefined;
  private ready = false;
  private readonly waiting = new Map<string, (reply: InboxMessage | undefined) => void>();
  private readonly prefix = randomBytes(4).toString('hex');
  private counter = 0;

  constructor(private readonly o: MqttChannelOptions) {}

  get connected(): boolean {
    return this.ready;
  }

  async heartbeat(body: HeartbeatBody): Promise<HeartbeatAnswer> {
    const reply = await this.ask('heartbeat', { ...body });
    if (!reply) return this.o.http.heartbeat(body);
    if (reply.type === 'error') throw replyError(reply, 'heartbeat');
    const list = Array.isArray(reply.pending_updates) ? reply.pending_updates : [];
    const next =
      typeof reply.next_heartbeat === 'number' && reply.next_heartbeat > 0 ? reply.next_heartbeat : 300;
    return {
      pending: list.map(parsePendingUpdate).filter((u): u is PendingUpdate => u !== undefined),
      nextHeartbeatSec: next,
      commands: parseCommands(reply.commands),
    };
  }

  /** Never throws, like DeviceClient.report: the outbox decides from the outcome. */
  async report(r: Report): Promise<SendOutcome> {
    const reply = await this.ask('reports', {
      update_id: r.update_id,
      seq: r.seq,
      state: r.state,
      progress: r.progress,
      error: r.error,
    });
    if (!reply) return this.o.http.report(r);
    if (reply.type === 'error') {
      const error = replyError(reply, 'status report');
      return error.code && FINAL_REFUSALS.has(error.code)
        ? { kind: 'refused', reason: error.message }
        : { kind: 'retry', reason: error.message };
    }
    return { kind: 'answered', accepted: reply.accepted === true, state: String(reply.state ?? '') };
  }

  async close(): Promise<void> {
    this.settleAll();
    await this.client?.endAsync(true);
  }

  /** Drops the connection; the next question connects again with the current TLS identity (after renewal). */
  async reconnect(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.ready = false;
    this.settleAll();
    await client?.endAsync(true);
  }

  /** Publishes one question and waits for its reply; undefined when MQTT cannot answer now. */
  private async ask(
    kind: 'heartbeat' | 'reports',
    body: Record<string, unknown>,
  ): Promise<InboxMessage | undefined> {
    const tls = this.o.tls?.();
    const credential = this.o.http.credential;
    if (tls?.certificatePem === undefined && !credential) return undefined;
    const client = this.start(credential, tls);
    if (!this.ready) return undefined;
    const requestId = `${this.prefix}-${++this.counter}`;
    const v5 = client.options.protocolVersion === 5 && credential !== undefined;
    // MQTT 5 carries the credential as HTTP does, in a header of sorts; 3.1.1 has only the payload.
    const payload = JSON.stringify({
      ...body,
      request_id: requestId,
      ...(v5 || !credential ? {} : { credential }),
    });
    const reply = new Promise<InboxMessage | undefined>((resolve) => {
      const timer = setTimeout(() => settle(undefined), this.o.replyTimeoutMs ?? 10_000);
      const settle = (message: InboxMessage | undefined) => {
        clearTimeout(timer);
        this.waiting.delete(requestId);
        resolve(message);
      };
      this.waiting.set(requestId, settle);
    });
    client.publish(
      `${this.topic()}/${kind}`,
      payload,
      {
        qos: 1,
        ...(v5 ? { properties: { userProperties: { authorization: `Bearer ${credential}` } } } : {}),
      },
      (error) => {
        if (error) this.waiting.get(requestId)?.(undefined);
      },
    );
    const answer = await reply;
    if (!answer) this.o.log.warn(`no ${kind} reply over MQTT; asking over HTTP`);
    return answer;
  }

  private topic(): string {
    return `${this.o.topicRoot ?? 'fleetd/v1/devices'}/${this.o.deviceId}`;
  }

  /** Connects once a credential or certificate exists; mqtt.js then keeps reconnecting on its own. */
  private start(credential: string | undefined, tls: MqttChannelTls | undefined): MqttClient {
    if (this.client) return this.client;
    const client = mqtt.connect(this.o.url, {
      protocolVersion: 5,
      clientId: this.o.deviceId,
      username: this.o.deviceId,
      ...(credential !== undefined ? { password: credential } : {}),
      ...(tls
        ? {
            ...(tls.caPems.length > 0 ? { ca: tls.caPems } : {}),
            ...(tls.certificatePem ? { cert: tls.certificatePem } : {}),
            ...(tls.privateKeyPem ? { key: tls.privateKeyPem } : {}),
          }
        : {}),
      clean: true,
      resubscribe: false,
      reconnectPeriod: 5_000,
      connectTimeout: 10_000,
      queueQoSZero: false,
    });
    this.client = client;
    let lastError = '';
    client.on('connect', () => {
      client.subscribe(`${this.topic()}/inbox`, { qos: 1 }, (error, granted) => {
        if (error || !granted?.every((g) => g.qos < 128)) {
          this.o.log.warn('MQTT inbox subscription refused; using HTTP', { error: error?.message });
          return;
        }
        this.ready = true;
        lastError = '';
        this.o.log.info('MQTT connected', { url: this.o.url, mqtt_version: client.options.protocolVersion });
        this.o.onWake(); // whatever was sent while we were away: ask now
      });
    });
    client.on('message', (_topic, payload) => this.receive(payload));
    client.on('close', () => {
      if (this.client !== client) return; // replaced by reconnect()
      if (this.ready) this.o.log.warn('MQTT connection lost; heartbeating over HTTP until it is back');
      this.ready = false;
      this.settleAll();
    });
    client.on('error', (error: Error & { code?: unknown }) => {
      if (client.options.protocolVersion === 5 && UNSUPPORTED_VERSION.has(Number(error.code))) {
        client.options.protocolVersion = 4;
        client.reconnect();
        return;
      }
      if (error.message !== lastError)
        this.o.log.warn('MQTT unavailable; using HTTP', { error: error.message });
      lastError = error.message;
    });
    return client;
  }

  private receive(payload: Buffer): void {
    let message: InboxMessage;
    try {
      message = JSON.parse(payload.toString('utf8')) as InboxMessage;
    } catch {
      return; // not from the server: ignore
    }
    if (typeof message !== 'object' || message === null) return;
    if (message.type === 'wake') this.o.onWake();
    else if (typeof message.request_id === 'string') this.waiting.get(message.request_id)?.(message);
  }

  /** Questions in flight when the connection drops are asked over HTTP at once, not after a timeout. */
  private settleAll(): void {
    for (const settle of [...this.waiting.values()]) settle(undefined);
  }
}

function replyError(reply: InboxMessage, what: string): ProtocolError {
  const error = (reply.error ?? {}) as { code?: unknown; message?: unknown };
  const code = typeof error.code === 'string' ? error.code : undefined;
  const message = typeof error.message === 'string' ? error.message : 'error';
  return new ProtocolError(
    HTTP_STATUS[code ?? ''] ?? 400,
    code,
    `${what} over MQTT: ${code ?? ''}: ${message}`,
  );
}
