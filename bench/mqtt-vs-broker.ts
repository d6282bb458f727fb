/**
 * `node dist/bench/mqtt-vs-broker.js [--devices 200] [--seconds 10] [--publishers 4] [--messages 50000]
 * [--broker mqtt://127.0.0.1:1883]`: heartbeat ingest over MQTT set against what the broker itself moves,
 * both measured in the same run on the same broker.
 *
 * 1. FleetD: a server (SQLite) bridged to the external broker; devices keep 4 heartbeats each in flight, and
 *    a heartbeat counts once its reply (sent after the group commit) is back in the device's inbox.
 * 2. The broker alone: `mosquitto_pub -l` processes each publish `--messages` payloads of the heartbeat's
 *    size at QoS 1 while one `mosquitto_sub` counts them: the publish rate (all acknowledged by the broker)
 *    and the delivery rate (messages received ÷ time to the last one).
 *
 * The ratio is the share of the broker's raw rate FleetD's ingest reaches: a heartbeat is two messages
 * through the broker (question and reply) plus a database write, so it cannot reach 1.
 *
 * `npm run bench -- mqtt` runs it with the defaults (scaled by BENCH_SCALE) and writes its row to BENCHMARKS.md.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import mqtt, { type MqttClient } from 'mqtt';
import { deviceCredential, hashSecret, splitDeviceCredential } from '../src/registry/credentials.js';
import { startServer } from '../src/server/serve.js';
import { type BenchResult, fmtInt, scaled } from './support.js';

interface Settings {
  devices: number;
  seconds: number;
  publishers: number;
  messages: number;
  broker: string;
}

const TARGET_RATIO = 0.5;

export function runMqttVsBroker(): Promise<BenchResult> {
  return measure({
    devices: 200,
    seconds: scaled(10, 2),
    publishers: 4,
    messages: scaled(50_000, 2_000),
    broker: process.env.FLEETD_BENCH_MQTT ?? 'mqtt://127.0.0.1:1883',
  });
}

async function measure(settings: Settings): Promise<BenchResult> {
  const { devices, seconds, publishers, messages } = settings;
  const values = { broker: settings.broker };
  const broker = new URL(values.broker);
  if (broker.hostname !== '127.0.0.1') throw new Error(`${values.broker}: this load goes to 127.0.0.1 only`);
  /** Heartbeats each device keeps in flight. */
  const window = 4;
  /** A topic root of this run's own, so nothing else on the broker hears it (or is heard). */
  const root = `fleetd-bench-${randomBytes(4).toString('hex')}`;

  // --- 1. FleetD's heartbeat ingest over the broker ---

  const server = await startServer({
    port: 0,
    dataDir: mkdtempSync(join(tmpdir(), 'fleetd-bench-broker-')),
    logLevel: 'error',
    mqtt: { url: values.broker, topicRoot: `${root}/devices` },
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
  const bodyOf = (id: string) =>
    JSON.stringify({
      device_id: id,
      credential: credentials.get(id),
      firmware_version: '1.0.0',
      timestamp: new Date().toISOString(),
      request_id: 'a1b2c3d4-1',
    });
  const payloadBytes = Buffer.byteLength(bodyOf(ids[0]!));

  let answered = 0;
  let running = false;
  const clients: MqttClient[] = await Promise.all(
    ids.map(async (id) => {
      const client = await mqtt.connectAsync(values.broker, {
        protocolVersion: 4,
        clientId: `${root}-${id}`,
        reconnectPeriod: 0,
      });
      const send = () => client.publish(`${root}/devices/${id}/heartbeat`, bodyOf(id), { qos: 1 });
      client.on('message', () => {
        answered++;
        if (running) send();
      });
      await client.subscribeAsync(`${root}/devices/${id}/inbox`, { qos: 1 });
      return client;
    }),
  );
  // The bridge subscribes once connected: wait until one heartbeat is answered before timing anything.
  for (let i = 0; answered === 0; i++) {
    if (i >= 100) throw new Error('the server never answered a heartbeat over the broker');
    clients[0]!.publish(`${root}/devices/${ids[0]}/heartbeat`, bodyOf(ids[0]!), { qos: 1 });
    await new Promise((r) => setTimeout(r, 200));
  }
  await new Promise((r) => setTimeout(r, 500));
  answered = 0;
  running = true;
  for (const [i, client] of clients.entries()) {
    for (let k = 0; k < window; k++)
      client.publish(`${root}/devices/${ids[i]}/heartbeat`, bodyOf(ids[i]!), { qos: 1 });
  }
  const started = Date.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  running = false;
  const fleetdRate = answered / ((Date.now() - started) / 1000);
  await Promise.all(clients.map((c) => c.endAsync(true)));
  await server.close();

  // --- 2. The broker's own rate with its own tools ---

  const port = broker.port || '1883';
  const total = publishers * messages;
  const lines = `${bodyOf(ids[0]!)}\n`.repeat(messages);
  const sub = spawn(
    'mosquitto_sub',
    ['-h', '127.0.0.1', '-p', port, '-t', `${root}/raw/#`, '-q', '1', '-C', String(total)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  // Counted as the lines arrive, so a subscriber the broker dropped messages for still gives its rate.
  let received = 0;
  let lastReceived = 0;
  sub.stdout.on('data', (chunk: Buffer) => {
    for (const byte of chunk) if (byte === 10) received++;
    lastReceived = Date.now();
  });
  const subDone = new Promise<number | null>((resolve) => sub.once('exit', resolve));
  await new Promise((r) => setTimeout(r, 500)); // subscribed before anything is published
  const rawStart = Date.now();
  const pubs = Array.from({ length: publishers }, (_, i) => {
    const pub = spawn(
      'mosquitto_pub',
      ['-h', '127.0.0.1', '-p', port, '-t', `${root}/raw/${i}`, '-q', '1', '-l'],
      { stdio: ['pipe', 'ignore', 'inherit'] },
    );
    pub.stdin.end(lines);
    return new Promise<number | null>((resolve) => pub.once('exit', resolve));
  });
  const pubCodes = await Promise.all(pubs);
  const publishedSeconds = (Date.now() - rawStart) / 1000;
  if (pubCodes.some((c) => c !== 0)) throw new Error(`mosquitto_pub exited ${pubCodes.join(', ')}`);
  // What the broker still delivers comes within a moment. A QoS 1 subscriber that falls behind loses what
  // overflows its queue (Mosquitto's max_queued_messages), so the count may stay short of the total.
  const late = setTimeout(() => sub.kill('SIGTERM'), 5000);
  await subDone;
  clearTimeout(late);
  const publishRate = total / publishedSeconds;
  const deliverRate = received / Math.max(0.001, (lastReceived - rawStart) / 1000);

  const ratio = fleetdRate / deliverRate;
  const fleetdLine = `${devices} devices × ${window} in flight, ${seconds} s: ${fmtInt(fleetdRate)} heartbeats/s (each answered after commit)`;
  const brokerLine = `${publishers} × mosquitto_pub -q 1 -l of ${fmtInt(messages)}: ${fmtInt(publishRate)} messages/s published (acknowledged by the broker); ${fmtInt(received)} of ${fmtInt(total)} delivered to one mosquitto_sub at ${fmtInt(deliverRate)} messages/s`;
  return {
    rows: [
      {
        name: 'mqtt (heartbeat ingest vs the broker)',
        figure: `${fmtInt(fleetdRate)} heartbeats/s over the broker, each answered after commit`,
        baseline: `Mosquitto delivering to one subscriber: ${fmtInt(deliverRate)} messages/s`,
        ratio: ratio.toFixed(2),
        target: `ratio ≥ ${TARGET_RATIO}`,
        pass: ratio >= TARGET_RATIO,
      },
    ],
    details: [
      `FleetD (SQLite, in the bench process) bridged to the broker at ${values.broker}; payload ${payloadBytes} bytes, QoS 1. ` +
        'Ratio = heartbeats/s ÷ messages/s Mosquitto delivers to one `mosquitto_sub` (bench/mqtt-vs-broker.ts).',
      `- FleetD: ${fleetdLine}`,
      `- Broker: ${brokerLine}`,
      `- Share of the publish rate: ${(fleetdRate / publishRate).toFixed(2)}`,
    ],
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({
    options: {
      devices: { type: 'string', default: '200' },
      seconds: { type: 'string', default: '10' },
      publishers: { type: 'string', default: '4' },
      messages: { type: 'string', default: '50000' },
      broker: { type: 'string', default: 'mqtt://127.0.0.1:1883' },
    },
  });
  const { rows, details } = await measure({
    devices: Number(values.devices),
    seconds: Number(values.seconds),
    publishers: Number(values.publishers),
    messages: Number(values.messages),
    broker: values.broker,
  });
  for (const row of rows) console.log(`${row.name}: ${row.figure} | ${row.baseline} | ratio ${row.ratio}`);
  for (const line of details) console.log(line);
}
