/** A device speaking the MQTT device protocol by hand (mqtt.js), for bridge tests: ask, and read the inbox. */
import type { IClientOptions, MqttClient } from 'mqtt';
import { connected, connectMqtt } from '../../src/transport/connect.js';
import { eventually } from './eventually.js';

export type InboxMessage = Record<string, unknown>;

export interface MqttDevice {
  client: MqttClient;
  inbox: InboxMessage[];
  /** Publishes a raw payload to one of the device's topics (or any topic). */
  publish(topic: string, payload: string): Promise<void>;
  /** Publishes a request with a fresh request_id and resolves with the reply carrying it. */
  ask(kind: 'heartbeat' | 'reports' | 'telemetry', body: Record<string, unknown>): Promise<InboxMessage>;
  /** Polls the inbox until a message matches. */
  waitFor(match: (m: InboxMessage) => boolean, what: string): Promise<InboxMessage>;
  close(): Promise<void>;
}

let counter = 0;

export async function mqttDevice(
  url: string,
  root: string,
  deviceId: string,
  credential: string,
  options: IClientOptions = {},
): Promise<MqttDevice> {
  const client = connectMqtt(url, {
    // `<id>/<suffix>`: the embedded broker's rule, and unique on a broker other test runs share.
    clientId: `${deviceId}/${Math.random().toString(36).slice(2, 10)}`,
    username: deviceId,
    password: credential,
    reconnectPeriod: 0,
    ...options,
  });
  await connected(client, 10_000);
  const inbox: InboxMessage[] = [];
  client.on('message', (_topic, payload) => inbox.push(JSON.parse(payload.toString()) as InboxMessage));
  const granted = await client.subscribeAsync(`${root}/${deviceId}/inbox`, { qos: 1 });
  if (granted.some((g) => g.qos >= 128)) throw new Error('inbox subscription refused');

  const waitFor = (match: (m: InboxMessage) => boolean, what: string) =>
    eventually(`${what} in the inbox of ${deviceId}`, () => {
      const found = inbox.find(match);
      if (!found) throw new Error(`inbox ${JSON.stringify(inbox)}`);
      return found;
    });
  const publish = async (topic: string, payload: string) => {
    await client.publishAsync(topic, payload, { qos: 1 });
  };
  return {
    client,
    inbox,
    publish,
    waitFor,
    async ask(kind, body) {
      const requestId = `t${++counter}`;
      const v5 = client.options.protocolVersion === 5;
      const payload = { ...body, request_id: requestId, ...(v5 ? {} : { credential }) };
      await client.publishAsync(`${root}/${deviceId}/${kind}`, JSON.stringify(payload), {
        qos: 1,
        ...(v5 ? { properties: { userProperties: { authorization: `Bearer ${credential}` } } } : {}),
      });
      return waitFor((m) => m.request_id === requestId, `reply to ${requestId}`);
    },
    close: () => client.endAsync(true),
  };
}
