/**
 * An mqtt.js client that speaks MQTT 5 and falls back to 3.1.1 for a broker that refuses 5 (the embedded
 * broker does: it answers "unacceptable protocol version"). mqtt.js keeps reconnecting on its own and
 * restores its subscriptions, so a broker restart costs the bridge nothing but the messages in flight.
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';

/** CONNACK codes for "not this protocol version": 1 in MQTT 3.1.1, 132 in MQTT 5. */
const UNSUPPORTED_VERSION = new Set([1, 132]);

/** The broker refused MQTT 5: connectMqtt retries with 3.1.1, so this is no failure to report. */
export function isVersionRefusal(error: Error & { code?: unknown }): boolean {
  return UNSUPPORTED_VERSION.has(Number(error.code));
}

export function connectMqtt(url: string, options: IClientOptions): MqttClient {
  const client = mqtt.connect(url, { protocolVersion: 5, reconnectPeriod: 2_000, ...options });
  client.on('error', (error: Error & { code?: unknown }) => {
    if (client.options.protocolVersion === 5 && UNSUPPORTED_VERSION.has(Number(error.code))) {
      client.options.protocolVersion = 4;
      client.reconnect();
    }
  });
  return client;
}

/** Resolves at the first successful connection; rejects on a refusal other than the version fallback. */
export function connected(client: MqttClient, timeoutMs: number): Promise<void> {
  if (client.connected) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (error?: Error) => {
      clearTimeout(timer);
      client.off('connect', onConnect);
      client.off('error', onError);
      if (error) reject(error);
      else resolve();
    };
    const onConnect = () => done();
    const onError = (error: Error & { code?: unknown }) => {
      if (!UNSUPPORTED_VERSION.has(Number(error.code)) && typeof error.code === 'number') done(error);
    };
    const timer = setTimeout(() => done(new Error(`no MQTT connection within ${timeoutMs} ms`)), timeoutMs);
    client.on('connect', onConnect);
    client.on('error', onError);
  });
}
