/**
 * `node dist/bench/mqtt-heartbeat.js [devices] [seconds]`: heartbeats per second over MQTT through the embedded
 * broker, each answered in the device's inbox after its group commit. Devices and server share this process
 * (as the HTTP heartbeat benchmark's load generator does not), so the figure is a floor.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { deviceCredential, hashSecret, splitDeviceCredential } from '../src/registry/credentials.js';
import { startServer } from '../src/server/serve.js';

const devices = Number(process.argv[2] ?? 200);
const seconds = Number(process.argv[3] ?? 10);
/** Heartbeats each device keeps in flight. */
const window = 4;

const server = await startServer({
  port: 0,
  dataDir: mkdtempSync(join(tmpdir(), 'fleetd-bench-mqtt-')),
  logLevel: 'error',
  mqtt: { port: 0, portRequired: true },
});
const ctx = { now: Date.now(), thresholds: { offlineAfterMs: 600_000, abandonedAfterMs: 2_592_000_000 } };
const ids = Array.from({ length: devices }, (_, i) => `bench-${i}`);
await server.store.importDevices(
  ids.map((id) => ({ id })),
  ctx,
  'bench',
);
const credentials = new Map<string, string>();
for (const id of ids) {
  const credential = deviceCredential(id);
  await server.store.setCredential(id, hashSecret(splitDeviceCredential(credential)!.secret), ctx, 'bench');
  credentials.set(id, credential);
}

let answered = 0;
let running = true;
const clients: MqttClient[] = await Promise.all(
  ids.map(
    (id) =>
      new Promise<MqttClient>((resolve, reject) => {
        const credential = credentials.get(id)!;
        const client = mqtt.connect(server.mqtt!.url, {
          protocolVersion: 4,
          clientId: id,
          username: id,
          password: credential,
          reconnectPeriod: 0,
        });
        const body = JSON.stringify({ device_id: id, credential, battery: 50 });
        const send = () => client.publish(`fleetd/v1/devices/${id}/heartbeat`, body, { qos: 1 });
        client.on('message', () => {
          answered++;
          if (running) send();
        });
        client.once('error', reject);
        client.once('connect', () => {
          client.subscribe(`fleetd/v1/devices/${id}/inbox`, { qos: 1 }, () => {
            for (let i = 0; i < window; i++) send();
            resolve(client);
          });
        });
      }),
  ),
);

const started = Date.now();
await new Promise((r) => setTimeout(r, seconds * 1000));
running = false;
const elapsed = (Date.now() - started) / 1000;
console.log(
  `${devices} devices × ${window} in flight, ${elapsed.toFixed(1)} s: ${Math.round(answered / elapsed)} heartbeats/s over MQTT (each answered after commit)`,
);
await Promise.all(clients.map((c) => c.endAsync(true)));
await server.close();
