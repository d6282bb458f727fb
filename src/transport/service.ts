/**
 * MQTT as `fleetd server` runs it: the embedded broker or an external one, the bridge, and wake-ups.
 * With an external broker every replica subscribes in the shared group; the embedded broker (aedes) has no
 * shared subscriptions and serves one replica's devices, so its bridge subscribes plainly (over an
 * in-process link, so the broker can tell it which client certificate a message came with).
 */
import { type Clock, systemClock } from '../core/clock.js';
import { FleetError } from '../core/errors.js';
import { WAKE } from '../protocol/mqtt.js';
import type { HeartbeatBatcher } from '../registry/heartbeat-batcher.js';
import type { ReportBatcher } from '../registry/report-batcher.js';
import type { Store } from '../store/store.js';
import { type BrokerClientTls, MqttBridge, redact, type TransportLog } from './bridge.js';
import type { DeviceAuthMode } from './broker-access.js';
import {
  BrokerPortInUse,
  type BrokerTls,
  type EmbeddedBroker,
  startEmbeddedBroker,
} from './embedded-broker.js';
import { Topics } from './topics.js';
import { WakePoller } from './wake.js';

export interface MqttSettings {
  /** An external broker (mqtt://user:pass@host:1883); without it the embedded broker is started. */
  url?: string | undefined;
  /** The embedded broker's port (0: any free one) and address. */
  port?: number;
  host?: string;
  /** The operator chose the port: a taken port is an error, not a warning. */
  portRequired?: boolean;
  /** The server's certificate, key and CA (PEM): with them the embedded broker also listens with TLS. */
  tls?: BrokerTls | undefined;
  /** The embedded broker's TLS port (default 8883; 0: any free one). */
  tlsPort?: number;
  /** The operator chose the TLS port: a taken one is an error, not a warning. */
  tlsPortRequired?: boolean;
  /**
   * 'any' (default): devices log in by client certificate (TLS port) or bearer credential; 'mtls': by
   * certificate only, and the embedded broker's plain port stays closed.
   */
  deviceAuth?: DeviceAuthMode;
  /** An external broker over mqtts://: its CA, and the server's client certificate if it asks for one. */
  brokerTls?: BrokerClientTls | undefined;
  /** Topic root instead of `fleetd/v1/devices`: several installations (or test runs) on one broker. */
  topicRoot?: string;
  /** How often the event log is read for updates to wake devices for. */
  wakeIntervalMs?: number;
}

export interface MqttDeps {
  store: Store;
  heartbeats: HeartbeatBatcher;
  reports: ReportBatcher;
  heartbeatIntervalSec: number;
  log: TransportLog;
  /** What "now" is for wake-ups (maintenance windows); the system clock by default. */
  clock?: Clock;
  /** The shortest interval between a device's telemetry reports (docs/telemetry.md; default 1 min). */
  telemetryMinIntervalMs?: number;
}

export interface RunningMqtt {
  /**
   * Where devices connect (the embedded broker's plain listener, or its TLS one when the plain one is
   * closed) or the external broker's URL without its password.
   */
  url: string;
  /** The embedded broker's TLS listener (mqtts://), when it has one. */
  tlsUrl: string | undefined;
  embedded: boolean;
  bridge: MqttBridge;
  /** The embedded broker's new TLS material (renewed certificate, client CAs changed) for new connections. */
  setTls(tls: BrokerTls): void;
  close(): Promise<void>;
}

export const DEFAULT_MQTT_PORT = 1883;
export const DEFAULT_MQTTS_PORT = 8883;

/** Undefined when the default port of the embedded broker is taken: the server then runs without MQTT. */
export async function startMqtt(settings: MqttSettings, deps: MqttDeps): Promise<RunningMqtt | undefined> {
  const topics = new Topics(settings.topicRoot);
  const deviceAuth = settings.deviceAuth ?? 'any';
  const clock = deps.clock ?? systemClock;
  let broker: EmbeddedBroker | undefined;
  if (settings.url === undefined) {
    const port = settings.port ?? DEFAULT_MQTT_PORT;
    const tlsPort = settings.tlsPort ?? DEFAULT_MQTTS_PORT;
    try {
      broker = await startEmbeddedBroker({
        store: deps.store,
        topics,
        host: settings.host ?? '127.0.0.1',
        port,
        tlsPort,
        tls: settings.tls,
        deviceAuth,
        clock,
        log: deps.log,
      });
    } catch (error) {
      if (!(error instanceof BrokerPortInUse)) throw error;
      const required = error.port === tlsPort ? settings.tlsPortRequired : settings.portRequired;
      if (required) throw error;
      deps.log.warn(
        { port: error.port },
        `MQTT off: port ${error.port} is taken (another broker?); use --mqtt URL to bridge to it, --mqtt-port N / --mqtt-tls-port N, or --no-mqtt`,
      );
      return undefined;
    }
  } else if (deviceAuth === 'mtls') {
    // An external broker does not tell FleetD which certificate a device logged in with.
    throw new FleetError(
      'VALIDATION',
      'device authentication by certificate only (mtls) works with the embedded broker, not an external --mqtt broker: use the embedded one, or --no-mqtt',
    );
  }
  const bridge = new MqttBridge({
    url: broker ? (broker.url ?? broker.tlsUrl)! : settings.url!,
    ...deps,
    shared: broker === undefined,
    topics,
    deviceAuth,
    tls: settings.brokerTls,
    ...(broker ? { link: () => broker.connectBridge() } : {}),
  });
  if (broker) await bridge.ready();
  else
    bridge.client.once('connect', () =>
      deps.log.info({ url: redact(settings.url!) }, 'MQTT bridge connected'),
    );
  const wakes = new WakePoller(
    deps.store,
    clock,
    (deviceId) => {
      // QoS 0 and never queued: a wake for a device that is not connected has no use later.
      if (bridge.client.connected)
        bridge.client.publish(topics.device(deviceId, 'inbox'), JSON.stringify(WAKE));
    },
    deps.log,
    settings.wakeIntervalMs,
  );
  await wakes.start();
  return {
    url: broker ? (broker.url ?? broker.tlsUrl)! : redact(settings.url!),
    tlsUrl: broker?.tlsUrl,
    embedded: broker !== undefined,
    bridge,
    setTls: (tls) => broker?.setTls(tls),
    async close() {
      await wakes.stop();
      await bridge.close();
      await broker?.close();
    },
  };
}
