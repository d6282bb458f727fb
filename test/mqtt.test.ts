/**
 * The MQTT bridge with real brokers: the embedded one (aedes, in the server process) and Mosquitto as an
 * external broker (FLEETD_TEST_MQTT, default mqtt://127.0.0.1:1883; `off` skips that half). Devices are
 * mqtt.js clients and the mosquitto_pub / mosquitto_sub command lines, as a device maker would try it.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Clock, ManualClock } from '../src/core/clock.js';
import { DEFAULT_THRESHOLDS } from '../src/core/device.js';
import { HeartbeatBatcher } from '../src/registry/heartbeat-batcher.js';
import { ReportBatcher } from '../src/registry/report-batcher.js';
import { type RunningServer, startServer } from '../src/server/serve.js';
import { MqttBridge } from '../src/transport/bridge.js';
import { connected, connectMqtt } from '../src/transport/connect.js';
import { DEFAULT_TOPIC_ROOT, Topics } from '../src/transport/topics.js';
import { eventually } from './support/eventually.js';
import { type Operator, operator } from './support/fleet.js';
import { type MqttDevice, mqttDevice } from './support/mqtt-device.js';
import { freePort, tempDir } from './support/processes.js';

const MQTT_SETTING = process.env.FLEETD_TEST_MQTT?.trim() || 'mqtt://127.0.0.1:1883';

interface Fleet {
  server: RunningServer;
  op: Operator;
  /** Where devices connect. */
  brokerUrl: string;
  root: string;
  devices: MqttDevice[];
  /** Registers a device and issues it a credential. */
  register(id: string): Promise<string>;
  connect(id: string, credential: string): Promise<MqttDevice>;
  close(): Promise<void>;
}

async function fleet(mode: 'embedded' | 'external', clock?: Clock): Promise<Fleet> {
  const dataDir = tempDir();
  // Its own topic root on the shared broker, so concurrent test runs never hear each other.
  const root =
    mode === 'embedded' ? DEFAULT_TOPIC_ROOT : `fleetd-test-${randomBytes(6).toString('hex')}/devices`;
  const server = await startServer({
    port: 0,
    dataDir,
    logLevel: 'silent',
    ...(clock ? { clock, engineIntervalMs: 100 } : {}),
    mqtt:
      mode === 'embedded'
        ? { port: 0, portRequired: true, wakeIntervalMs: 100 }
        : { url: MQTT_SETTING, topicRoot: root, wakeIntervalMs: 100 },
  });
  await server.mqtt!.bridge.ready();
  const op = operator(server.url, dataDir);
  const devices: MqttDevice[] = [];
  const brokerUrl = mode === 'embedded' ? server.mqtt!.url : MQTT_SETTING;
  return {
    server,
    op,
    brokerUrl,
    root,
    devices,
    async register(id) {
      await op.call('POST', '/api/v1/devices/import', {
        devices: [{ id, hardware_type: 'pos-x200', firmware_version: '1.0.0' }],
      });
      const r = await op.call<{ credential: string }>('POST', `/api/v1/devices/${id}/credential`);
      return r.body.credential;
    },
    async connect(id, credential) {
      const device = await mqttDevice(brokerUrl, root, id, credential);
      devices.push(device);
      return device;
    },
    async close() {
      await Promise.all(devices.map((d) => d.close()));
      await server.close();
    },
  };
}

/** A command line, run without blocking the event loop: the server under test is in this process. */
function run(command: string, args: string[]): Promise<{ status: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: 20_000 }, (error, _stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ status: code, stderr });
    });
  });
}

async function deviceStatus(op: Operator, id: string): Promise<string> {
  return (await op.call<{ status: string }>('GET', `/api/v1/devices/${id}`)).body.status;
}

const waitForOnline = (op: Operator, id: string): Promise<boolean> =>
  eventually(`${id} to come online`, async () => (await deviceStatus(op, id)) === 'online');

async function assignNewRelease(op: Operator, device: string): Promise<string> {
  const name = `fw-${randomBytes(4).toString('hex')}`;
  await op.upload(`name=${name}&version=2.0.0&hardware=pos-x200`, randomBytes(1024));
  const r = await op.call<{ assigned: Array<{ id: string }> }>('POST', '/api/v1/updates/assign', {
    release: `${name}@2.0.0`,
    devices: [device],
  });
  return r.body.assigned[0]!.id;
}

/** Uploads a fresh release and creates a rollout of it (the spec's other fields given); returns its id. */
async function createRollout(op: Operator, spec: Record<string, unknown>): Promise<string> {
  const name = `fw-${randomBytes(4).toString('hex')}`;
  await op.upload(`name=${name}&version=2.0.0&hardware=pos-x200`, randomBytes(1024));
  const r = await op.call<{ id: string }>('POST', '/api/v1/rollouts', {
    name,
    release: `${name}@2.0.0`,
    ...spec,
  });
  if (r.status !== 201) throw new Error(`rollout refused: ${JSON.stringify(r.body)}`);
  return r.body.id;
}

const wakes = (d: MqttDevice) => d.inbox.filter((m) => m.type === 'wake').length;

/** Polls until one of the devices has been woken; returns it. */
const firstWoken = (devices: MqttDevice[]): Promise<MqttDevice> =>
  eventually('a device to be woken', () => devices.find((d) => wakes(d) > 0));

/** What both brokers must do alike: the device protocol, errors in the inbox, wake-ups. */
function protocolSuite(mode: 'embedded' | 'external') {
  let f: Fleet;
  beforeAll(async () => {
    f = await fleet(mode);
  });
  afterAll(async () => f?.close());

  it('answers a heartbeat in the inbox and records it like HTTP does', async () => {
    const credential = await f.register('hb-1');
    const device = await f.connect('hb-1', credential);
    const reply = await device.ask('heartbeat', {
      device_id: 'hb-1',
      firmware_version: '1.0.1',
      battery: 80,
    });
    expect(reply).toMatchObject({ type: 'heartbeat', pending_updates: [], next_heartbeat: 300 });
    const d = await f.op.call<{ status: string; firmware_version: string }>('GET', '/api/v1/devices/hb-1');
    expect(d.body).toMatchObject({ status: 'online', firmware_version: '1.0.1' });
  });

  it('wakes a device when an update is assigned, offers it, and takes its reports', async () => {
    const credential = await f.register('wake-1');
    const device = await f.connect('wake-1', credential);
    await device.ask('heartbeat', { device_id: 'wake-1' });
    const updateId = await assignNewRelease(f.op, 'wake-1');
    await device.waitFor((m) => m.type === 'wake', 'wake-up');
    const offer = await device.ask('heartbeat', { device_id: 'wake-1' });
    const pending = offer.pending_updates as Array<{ id: string; state: string; download_url: string }>;
    expect(pending.map((u) => [u.id, u.state])).toEqual([[updateId, 'notified']]);
    expect(pending[0]!.download_url).toMatch(/^\/api\/device\/v1\/artifacts\/[0-9a-f]{64}$/);

    const report = { update_id: updateId, seq: 1, state: 'downloading', progress: 10 };
    expect(await device.ask('reports', report)).toMatchObject({
      type: 'report',
      update_id: updateId,
      seq: 1,
      accepted: true,
      state: 'downloading',
    });
    // Resent (the device lost the reply): idempotent, as over HTTP.
    expect(await device.ask('reports', report)).toMatchObject({ accepted: false, state: 'downloading' });
    const refused = await device.ask('reports', { update_id: updateId, seq: 2, state: 'rolled_back' });
    expect(refused).toMatchObject({ type: 'error', error: { code: 'TRANSITION_NOT_ALLOWED' } });
  });

  it('answers malformed and invalid payloads with an error in the inbox and keeps serving', async () => {
    const credential = await f.register('bad-1');
    const device = await f.connect('bad-1', credential);
    await device.publish(`${f.root}/bad-1/heartbeat`, '{"device_id": ');
    const malformed = await device.waitFor((m) => m.type === 'error', 'error');
    expect(malformed.error).toMatchObject({ code: 'MALFORMED_JSON' });
    expect(await device.ask('heartbeat', { device_id: 'bad-1', battery: 'full' })).toMatchObject({
      type: 'error',
      error: { code: 'VALIDATION', message: expect.stringContaining('payload.battery') },
    });
    expect(await device.ask('reports', { seq: 1, state: 'downloading' })).toMatchObject({
      error: { code: 'VALIDATION', message: expect.stringContaining('update_id') },
    });
    expect(await device.ask('heartbeat', { device_id: 'bad-1' })).toMatchObject({ type: 'heartbeat' });
  });

  it("refuses a heartbeat naming another device than the topic's", async () => {
    const credential = await f.register('liar-1');
    const device = await f.connect('liar-1', credential);
    expect(await device.ask('heartbeat', { device_id: 'someone-else' })).toMatchObject({
      error: { code: 'FORBIDDEN' },
    });
  });
}

describe('MQTT with the embedded broker', () => {
  protocolSuite('embedded');

  describe('authentication and ACLs', () => {
    let f: Fleet;
    beforeAll(async () => {
      f = await fleet('embedded');
    });
    afterAll(async () => f?.close());

    it('refuses a connection with a wrong credential, or with the credential of another device', async () => {
      const credential = await f.register('acl-1');
      await f.register('acl-2');
      const attempt = async (username: string, password: string, clientId: string) => {
        const client = connectMqtt(f.brokerUrl, { username, password, clientId, reconnectPeriod: 0 });
        try {
          await connected(client, 10_000);
          return 'connected';
        } catch (e) {
          return (e as Error).message;
        } finally {
          await client.endAsync(true);
        }
      };
      expect(await attempt('acl-1', `${credential}x`, 'acl-1')).toMatch(/Bad username or password/i);
      expect(await attempt('acl-2', credential, 'acl-2')).toMatch(/Bad username or password/i);
      expect(await attempt('acl-1', credential, 'acl-2')).toMatch(/Identifier rejected/i);
      expect(await attempt('acl-1', credential, 'acl-1/diag')).toBe('connected');
    });

    it("refuses subscribing to another device's inbox and publishing to another device's topics", async () => {
      const one = await f.connect('acl-3', await f.register('acl-3'));
      // Refused filters get the failure code 128, which mqtt.js reports as an error; the connection stays.
      await expect(one.client.subscribeAsync(`${f.root}/acl-4/inbox`, { qos: 1 })).rejects.toThrow(
        /Subscribe error/,
      );
      await expect(one.client.subscribeAsync(`${f.root}/+/inbox`, { qos: 1 })).rejects.toThrow(
        /Subscribe error/,
      );
      expect(one.client.connected).toBe(true);

      await f.register('acl-4');
      const closed = new Promise<void>((resolve) => one.client.once('close', () => resolve()));
      one.client.publish(`${f.root}/acl-4/heartbeat`, JSON.stringify({ device_id: 'acl-4' }), { qos: 1 });
      await closed; // MQTT 3.1.1 cannot refuse a PUBLISH: the broker drops the connection
      expect(await deviceStatus(f.op, 'acl-4')).toBe('unknown');
    });

    it('lets mosquitto_pub heartbeat with a device credential, and not as another device', async () => {
      const credential = await f.register('cli-1');
      await f.register('cli-2');
      const port = new URL(f.brokerUrl).port;
      const pub = (topic: string, password: string) =>
        run('mosquitto_pub', [
          ...[
            '-h',
            '127.0.0.1',
            '-p',
            port,
            '-i',
            'cli-1',
            '-u',
            'cli-1',
            '-P',
            password,
            '-q',
            '1',
            '-t',
            topic,
          ],
          ...['-m', JSON.stringify({ device_id: topic.split('/')[3], credential: password })],
        ]);
      const ok = await pub(`${f.root}/cli-1/heartbeat`, credential);
      expect(ok.status, ok.stderr).toBe(0);
      await waitForOnline(f.op, 'cli-1');

      const forged = await pub(`${f.root}/cli-2/heartbeat`, credential);
      expect(forged.status).not.toBe(0);
      const wrong = await pub(`${f.root}/cli-1/heartbeat`, `${credential}x`);
      expect(wrong.status).not.toBe(0);
      expect(wrong.stderr).toMatch(/bad user name or password/i);
      expect(await deviceStatus(f.op, 'cli-2')).toBe('unknown');
    });
  });

  describe('its port', () => {
    it('fails with one clear line when a chosen port is taken, and runs without MQTT when the default is', async () => {
      const port = await freePort();
      const holder = createServer().listen(port, '127.0.0.1');
      await new Promise((r) => holder.once('listening', r));
      try {
        await expect(
          startServer({
            port: 0,
            dataDir: tempDir(),
            logLevel: 'silent',
            mqtt: { port, portRequired: true },
          }),
        ).rejects.toThrow(`MQTT port ${port} is already in use`);
        const server = await startServer({
          port: 0,
          dataDir: tempDir(),
          logLevel: 'silent',
          mqtt: { port, portRequired: false },
        });
        expect(server.mqtt).toBeUndefined();
        expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
        await server.close();
      } finally {
        holder.close();
      }
    });
  });
});

describe.skipIf(MQTT_SETTING === 'off')(`MQTT with an external broker (${MQTT_SETTING})`, () => {
  protocolSuite('external');

  describe('authentication without broker ACLs', () => {
    let f: Fleet;
    beforeAll(async () => {
      f = await fleet('external');
    });
    afterAll(async () => f?.close());

    it('refuses a wrong credential and a credential used on another device’s topic', async () => {
      const one = await f.register('ext-1');
      await f.register('ext-2');
      // The broker lets anyone in (no ACLs configured): the bridge is what refuses.
      const impostor = await mqttDevice(f.brokerUrl, f.root, 'ext-2', one);
      f.devices.push(impostor);
      expect(await impostor.ask('heartbeat', { device_id: 'ext-2' })).toMatchObject({
        error: { code: 'FORBIDDEN', message: expect.stringContaining('belongs to ext-1') },
      });
      const wrong = await mqttDevice(f.brokerUrl, f.root, 'ext-1', `${one}x`);
      f.devices.push(wrong);
      expect(await wrong.ask('heartbeat', { device_id: 'ext-1' })).toMatchObject({
        error: { code: 'UNAUTHENTICATED' },
      });
      expect(await deviceStatus(f.op, 'ext-2')).toBe('unknown');
      expect(await deviceStatus(f.op, 'ext-1')).toBe('unknown');
    });

    it('takes MQTT 3.1.1 with the credential in the payload (mosquitto_pub)', async () => {
      const credential = await f.register('ext-cli');
      // The inbox read by an MQTT 5 client, the heartbeat sent by mosquitto_pub speaking 3.1.1.
      const reader = await f.connect('ext-cli', credential);
      const { hostname, port } = new URL(f.brokerUrl);
      const body = JSON.stringify({ device_id: 'ext-cli', credential, request_id: 'cli' });
      const pub = await run('mosquitto_pub', [
        ...['-V', 'mqttv311', '-h', hostname, '-p', port, '-q', '1'],
        ...['-t', `${f.root}/ext-cli/heartbeat`, '-m', body],
      ]);
      expect(pub.status, pub.stderr).toBe(0);
      const reply = await reader.waitFor((m) => m.request_id === 'cli', 'reply');
      expect(reply).toMatchObject({ type: 'heartbeat', pending_updates: [] });
      await waitForOnline(f.op, 'ext-cli');
    });

    it('shares device traffic between replicas ($share/fleetd/…)', async () => {
      const second = new MqttBridge({
        url: MQTT_SETTING,
        store: f.server.store,
        heartbeats: new HeartbeatBatcher(f.server.store, { now: () => Date.now() }, DEFAULT_THRESHOLDS),
        reports: new ReportBatcher(f.server.store, { now: () => Date.now() }, DEFAULT_THRESHOLDS),
        heartbeatIntervalSec: 300,
        shared: true,
        topics: new Topics(f.root),
        log: { info: () => {}, warn: () => {}, error: () => {} },
      });
      try {
        await second.ready();
        // The subscription is in once a message to it arrives: ask until the second replica has taken one.
        const credential = await f.register('shared-1');
        const device = await f.connect('shared-1', credential);
        const first = f.server.mqtt!.bridge;
        const before = first.handled;
        let asked = 0;
        while (second.handled === 0 || first.handled === before) {
          await device.ask('heartbeat', { device_id: 'shared-1' });
          asked++;
          if (asked > 200) throw new Error('the replicas did not share the traffic');
        }
        // Each heartbeat was handled by exactly one replica: one reply each, and the counts add up.
        expect(first.handled - before + second.handled).toBe(asked);
        expect(device.inbox.filter((m) => m.type === 'heartbeat')).toHaveLength(asked);
      } finally {
        await second.close();
      }
    });
  });
});

describe.skipIf(MQTT_SETTING === 'off')(`wake-ups for rollouts (${MQTT_SETTING})`, () => {
  // Monday 5 January 2026, 01:00 UTC: an hour before the windows below open.
  const clock = new ManualClock(Date.UTC(2026, 0, 5, 1, 0));
  let f: Fleet;
  beforeAll(async () => {
    f = await fleet('external', clock);
  });
  afterAll(async () => f?.close());

  /** A registered device connected over MQTT that has heartbeated once (online). */
  const online = async (id: string) => {
    const device = await f.connect(id, await f.register(id));
    await device.ask('heartbeat', { device_id: id });
    return device;
  };
  /** The device takes its offered update and reports it done. */
  const finish = async (device: MqttDevice, id: string) => {
    const offer = await device.ask('heartbeat', { device_id: id });
    const [update] = offer.pending_updates as Array<{ id: string; state: string }>;
    expect(update?.state).toBe('notified');
    const done = await device.ask('reports', { update_id: update!.id, seq: 1, state: 'succeeded' });
    expect(done).toMatchObject({ accepted: true, state: 'succeeded' });
  };

  it('wakes the devices a new immediate rollout makes ready', async () => {
    const device = await online('rw-create');
    await createRollout(f.op, { filter: 'id = rw-create', strategy: 'immediate' });
    await device.waitFor((m) => m.type === 'wake', 'wake-up');
  });

  it('wakes the next phase when its gate passes, not before', async () => {
    const devices = [await online('rw-phase-1'), await online('rw-phase-2')];
    await createRollout(f.op, {
      filter: 'id in (rw-phase-1, rw-phase-2)',
      strategy: 'progressive',
      phases: [{ percentage: 50, wait: '1h', success_rate: 50 }, { percentage: 100 }],
    });
    const canary = await firstWoken(devices);
    const other = devices.find((d) => d !== canary)!;
    const canaryId = canary === devices[0] ? 'rw-phase-1' : 'rw-phase-2';
    await finish(canary, canaryId);
    expect(wakes(other)).toBe(0);
    clock.advance(60 * 60_000 + 1_000); // the soak is over: the engine opens the next phase
    await other.waitFor((m) => m.type === 'wake', 'wake-up for the second phase');
  });

  it('wakes a scheduled rollout’s devices when their window opens', async () => {
    const day = new Date(clock.now());
    const at = (hour: number) =>
      Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate() + 1, hour, 0, 1);
    clock.set(at(1)); // the next day, an hour before the window
    const device = await online('rw-window');
    await createRollout(f.op, {
      filter: 'id = rw-window',
      strategy: 'scheduled',
      window: { start: '02:00', end: '04:00', timezone: 'UTC' },
    });
    // A rollout created after it is looked at after it: once its device is woken, the window's was passed over.
    const marker = await online('rw-window-marker');
    await createRollout(f.op, { filter: 'id = rw-window-marker', strategy: 'immediate' });
    await marker.waitFor((m) => m.type === 'wake', 'wake-up of the marker');
    expect(wakes(device)).toBe(0);
    clock.set(at(2));
    await device.waitFor((m) => m.type === 'wake', 'wake-up when the window opens');
  });

  it('wakes the next device in line when a download slot is freed', async () => {
    const devices = [await online('rw-slot-1'), await online('rw-slot-2')];
    await createRollout(f.op, {
      filter: 'id in (rw-slot-1, rw-slot-2)',
      strategy: 'immediate',
      max_concurrent: 1,
    });
    const first = await firstWoken(devices);
    const second = devices.find((d) => d !== first)!;
    // One slot: only one device is woken while it is taken (the other's wake would come with the first's).
    expect(wakes(second)).toBe(0);
    await finish(first, first === devices[0] ? 'rw-slot-1' : 'rw-slot-2');
    await second.waitFor((m) => m.type === 'wake', 'wake-up for the freed slot');
  });
});
