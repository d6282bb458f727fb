/**
 * MQTT as `fleetd server` runs it: the embedded broker or an external one, the bridge, and wake-ups.
 * With an external broker every replica subscribes in the shared group; the embedded broker (aedes) has no
 * shared subscriptions and serves one replica's devices, so its bridge subscribes plainly.
 */
import { type Clock, systemClock } from '../core/clock.js';
import { WAKE } from '../protocol/mqtt.js';
import type { HeartbeatBatcher } from '../registry/heartbeat-batcher.js';
import type { ReportBatcher } from '../registry/report-batcher.js';
import type { Store } from '../store/store.js';
import { MqttBridge, redact, type TransportLog } from './bridge.js';
import { BrokerPortInUse, type EmbeddedBroker, startEmbeddedBroker } from './embedded-broker.js';
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
}

export interface RunningMqtt {
  /** Where devices connect (for the embedded broker) or the external broker's URL without its password. */
  url: string;
  embedded: boolean;
  bridge: MqttBridge;
  close(): Promise<void>;
}

export const DEFAULT_MQTT_PORT = 1883;

/** Undefined when the default port of the embedded broker is taken: the server then runs without MQTT. */
export async function startMqtt(settings: MqttSettings, deps: MqttDeps): Promise<RunningMqtt | undefined> {
  const topics = new Topics(settings.topicRoot);
  let broker: EmbeddedBroker | undefined;
  if (settings.url === undefined) {
    const port = settings.port ?? DEFAULT_MQTT_PORT;
    try {
      broker = await startEmbeddedBroker({
        store: deps.store,
        topics,
        host: settings.host ?? '127.0.0.1',
        port,
      });
    } catch (error) {
      if (!(error instanceof BrokerPortInUse) || settings.portRequired) throw error;
      deps.log.warn(
        { port },
        `MQTT off: port ${port} is taken (another broker?); use --mqtt URL to bridge to it, --mqtt-port N, or --no-mqtt`,
      );
      return undefined;
    }
  }
  const bridge = new MqttBridge({
    url: broker?.url ?? settings.url!,
    ...deps,
    shared: broker === undefined,
    topics,
    ...(broker ? broker.bridgeLogin : {}),
  });
  if (broker) await bridge.ready();
  else
    bridge.client.once('connect', () =>
      deps.log.info({ url: redact(settings.url!) }, 'MQTT bridge connected'),
    );
  const wakes = new WakePoller(
    deps.store,
    deps.clock ?? systemClock,
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
    url: broker?.url ?? redact(settings.url!),
    embedded: broker !== undefined,
    bridge,
    async close() {
      await wakes.stop();
      await bridge.close();
      await broker?.close();
    },
  };
}
