/**
 * Telemetry over MQTT (the embedded broker): a device publishes its report on `…/{id}/telemetry` and is answered
 * in its inbox as over HTTP — accepted, or `accepted: false` with the wait when it is too soon; a malformed one is
 * an error reply and writes nothing. (That a device
 * publishes only its own telemetry topic is the broker's ACL: topics.test.ts.)
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { type RunningServer, startServer } from '../src/server/serve.js';
import { DEFAULT_TOPIC_ROOT } from '../src/transport/topics.js';
import { type Operator, operator } from './support/fleet.js';
import { type MqttDevice, mqttDevice } from './support/mqtt-device.js';
import { tempDir } from './support/processes.js';

let server: RunningServer;
let op: Operator;
let device: MqttDevice;
const clock = new ManualClock(Date.parse('2026-11-22T12:00:00Z'));

beforeAll(async () => {
  const dataDir = tempDir();
  server = await startServer({
    port: 0,
    dataDir,
    logLevel: 'silent',
    clock,
    mqtt: { port: 0, portRequired: true, wakeIntervalMs: 100 },
  });
  await server.mqtt!.bridge.ready();
  op = operator(server.url, dataDir);
  await op.call('POST', '/api/v1/devices/import', { devices: [{ id: 'm-1' }, { id: 'm-2' }] });
  const credential = (await op.call<{ credential: string }>('POST', '/api/v1/devices/m-1/credential')).body
    .credential;
  device = await mqttDevice(server.mqtt!.url, DEFAULT_TOPIC_ROOT, 'm-1', credential);
});

afterAll(async () => {
  await device?.close();
  await server?.close();
});

it('takes a telemetry report over MQTT, at most one a minute, and refuses a malformed one', async () => {
  const bad = await device.ask('telemetry', { metrics: { 'bad name': 1 } });
  expect(bad).toMatchObject({ type: 'error', error: { code: 'VALIDATION' } });

  const first = await device.ask('telemetry', {
    metrics: { cpu_pct: 12, disk_free_pct: 4 },
    inventory: {
      os: 'Debian 12',
      kernel: '6.1.0',
      packages: [{ name: 'openssl', version: '3.0.9-1' }],
      interfaces: [],
    },
  });
  expect(first).toMatchObject({ type: 'telemetry', accepted: true, retry_after: 60 });
  clock.advance(20_000);
  expect(await device.ask('telemetry', { metrics: { cpu_pct: 50 } })).toMatchObject({
    type: 'telemetry',
    accepted: false,
    retry_after: 40,
  });

  const series = await op.call<{ latest: Array<{ name: string; value: number }> }>(
    'GET',
    '/api/v1/devices/m-1/telemetry',
  );
  expect(series.body.latest).toEqual([
    expect.objectContaining({ name: 'cpu_pct', value: 12 }),
    expect.objectContaining({ name: 'disk_free_pct', value: 4 }),
  ]);
  const found = await op.call<{ devices: Array<{ id: string }> }>(
    'GET',
    `/api/v1/devices?filter=${encodeURIComponent('telemetry.disk_free_pct < 10 and inventory.package.openssl < 3.0.11')}`,
  );
  expect(found.body.devices.map((d) => d.id)).toEqual(['m-1']);
});
