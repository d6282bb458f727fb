/**
 * Several replicas on one PostgreSQL: three real `fleetd server` processes share a schema, protocol devices
 * spread their requests over all three, and the replica driving the rollout (the lease holder) is killed with
 * kill -9 mid-rollout. Another one must take the rollout over and finish it, with no device granted its slot
 * twice, no acknowledged report missing from the store, max_concurrent never exceeded, no status transition
 * recorded twice, and every event of the rollout on the event stream of each surviving replica.
 */
import { hostname } from 'node:os';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mulberry32 } from '../src/core/random.js';
import { HttpTransport } from '../src/sim/http-transport.js';
import { type DeviceTransport, ProtocolDevice } from '../src/sim/protocol-device.js';
import { eventually } from './support/eventually.js';
import { operator } from './support/fleet.js';
import { type ServerProcess, spawnServer, tempDir } from './support/processes.js';
import { freshPostgresSchema, postgresSkipped } from './support/stores.js';

const DEVICES = 60;
const MAX_CONCURRENT = 4;
const ACTIVE = new Set(['notified', 'downloading', 'installing', 'verifying']);
const FINAL = new Set(['succeeded', 'failed', 'rolled_back', 'cancelled', 'skipped']);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
/** The devices' working and pacing times vary, from a seed so a run can be replayed. */
const jitter = mulberry32(14);

/** Reads a server-sent event stream in the background, keeping the ids of the events received. */
function readStream(url: string, token: string): { ids: Set<number>; stop(): void } {
  const ids = new Set<number>();
  const abort = new AbortController();
  void (async () => {
    try {
      const response = await fetch(url, {
        signal: abort.signal,
        headers: { authorization: `Bearer ${token}` },
      });
      const decoder = new TextDecoder();
      let buffer = '';
      for await (const chunk of response.body!) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        let end = buffer.indexOf('\n\n');
        while (end >= 0) {
          const id = /^id: (\d+)$/m.exec(buffer.slice(0, end));
          if (id) ids.add(Number(id[1]));
          buffer = buffer.slice(end + 2);
          end = buffer.indexOf('\n\n');
        }
      }
    } catch {
      // stopped, or the replica was killed
    }
  })();
  return { ids, stop: () => abort.abort() };
}

describe.skipIf(postgresSkipped !== undefined)('replicas on one PostgreSQL', () => {
  let database: { url: string; drop(): Promise<void> };
  let db: pg.Client;
  const servers: ServerProcess[] = [];

  beforeAll(async () => {
    database = await freshPostgresSchema();
    db = new pg.Client({ connectionString: database.url });
    await db.connect();
  });

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.kill('SIGKILL')));
    await db?.end();
    await database?.drop();
  });

  it('a replica killed mid-rollout hands the rollout over: nothing granted twice, lost or over the limit', async () => {
    const data = tempDir('fleetd-replicas-');
    const args = ['--db', database.url, '--lease', '3s', '--engine-interval', '200ms', '--log-level', 'warn'];
    // One after the other: the first creates the schema, the signing key and the admin token the others use.
    for (let i = 0; i < 3; i++) servers.push(await spawnServer(data, args));
    const urls = servers.map((s) => s.url);
    const ops = urls.map((url) => operator(url, data));

    const devices = Array.from({ length: DEVICES }, (_, i) => ({
      id: `dev-${String(i).padStart(3, '0')}`,
      firmware_version: '1.0.0',
      hardware_type: 'hw-a',
    }));
    expect((await ops[0]!.call('POST', '/api/v1/devices/import', { devices })).status).toBe(200);
    await ops[1]!.upload('name=fw&version=2.0.0&type=firmware&hardware=hw-a', Buffer.alloc(4096, 7));

    // Every acknowledged status report: update id → highest sequence number acknowledged.
    const acknowledged = new Map<string, number>();
    const http = new HttpTransport(urls, {
      // Device work takes a little while, so slots are held and contended for.
      beforeRequest: (_url, path) => (path.endsWith('/status') ? sleep(20 + jitter() * 40) : undefined),
    });
    const transport: DeviceTransport = {
      async post(path, body, credential) {
        const answer = await http.post(path, body, credential);
        const report = /\/updates\/([^/]+)\/status$/.exec(path);
        if (report && answer.status === 200) {
          const seq = (body as { seq: number }).seq;
          acknowledged.set(report[1]!, Math.max(acknowledged.get(report[1]!) ?? 0, seq));
        }
        return answer;
      },
    };
    const fleet: ProtocolDevice[] = [];
    for (const [i, d] of devices.entries()) {
      const r = await ops[i % 3]!.call<{ credential: string }>('POST', `/api/v1/devices/${d.id}/credential`);
      fleet.push(
        new ProtocolDevice(d.id, r.body.credential, transport, '1.0.0', {
          outcome: () => ({ kind: 'succeed' }),
        }),
      );
    }
    for (const device of fleet) await device.heartbeat();

    const created = await ops[2]!.call<{ id: string }>('POST', '/api/v1/rollouts', {
      name: 'across replicas',
      release: 'fw@2.0.0',
      filter: '',
      strategy: 'progressive',
      phases: [
        { name: 'canary', percentage: 10, success_rate: 50 },
        { name: 'half', percentage: 50, success_rate: 50 },
        { name: 'all', percentage: 100, success_rate: 50 },
      ],
      max_concurrent: MAX_CONCURRENT,
      timeout: '10m',
      seed: 7,
    });
    expect(created.status).toBe(201);
    const rolloutId = created.body.id;
    const streams = urls.map((url) =>
      readStream(`${url}/api/v1/events/stream?after=0&rollout=${rolloutId}`, ops[0]!.token),
    );

    // Devices check in again and again, each over any replica, until the rollout is over.
    let over = false;
    const errors: string[] = [];
    const running = fleet.map(async (device) => {
      while (!over) {
        try {
          await device.connect();
        } catch (error) {
          errors.push(String(error));
        }
        await sleep(100 + jitter() * 150);
      }
    });

    const rollout = async () =>
      (
        await db.query<{ state: string; current_phase: string; lease_owner: string | null }>(
          'select state, current_phase, lease_owner from rollouts where id = $1',
          [rolloutId],
        )
      ).rows[0]!;
    const replicaOf = (owner: string | null) =>
      servers.findIndex((s) => owner?.startsWith(`${hostname()}:${s.child.pid}:`));

    // Mid-rollout: the second phase has begun. Kill the replica driving it.
    const holder = await eventually(
      'the second phase to start',
      async () => {
        const r = await rollout();
        return Number(r.current_phase) >= 1 && r.state === 'running' ? replicaOf(r.lease_owner) : undefined;
      },
      { timeoutMs: 60_000 },
    );
    expect(holder).toBeGreaterThanOrEqual(0);
    const killedAt = (await db.query<{ id: string }>('select max(id) as id from events')).rows[0]!.id;
    await servers[holder]!.kill('SIGKILL');
    streams[holder]!.stop();

    const final = await eventually(
      'the rollout to finish',
      async () => {
        const r = await rollout();
        return r.state === 'running' ? undefined : r;
      },
      { timeoutMs: 90_000 },
    );
    over = true;
    await Promise.all(running);
    expect(errors).toEqual([]);
    expect(final.state).toBe('completed');
    // Taken over by a survivor, which drove the rollout from the second phase to its end.
    const successor = replicaOf(final.lease_owner);
    expect(successor).toBeGreaterThanOrEqual(0);
    expect(successor).not.toBe(holder);
    const late = await db.query<{ type: string }>(
      `select type from events where rollout_id = $1 and id > $2 and type like 'rollout.%' order by id`,
      [rolloutId, killedAt],
    );
    expect(late.rows.map((r) => r.type)).toContain('rollout.completed');

    const updates = await db.query<{ id: string; device_id: string; state: string; last_seq: string }>(
      'select id, device_id, state, last_seq from device_updates where rollout_id = $1',
      [rolloutId],
    );
    expect(updates.rows).toHaveLength(DEVICES);
    expect(updates.rows.every((u) => u.state === 'succeeded')).toBe(true);
    // No acknowledged report is missing.
    const lastSeq = new Map(updates.rows.map((u) => [u.id, Number(u.last_seq)]));
    expect(acknowledged.size).toBe(DEVICES);
    for (const [id, seq] of acknowledged) expect({ id, seq: lastSeq.get(id) ?? 0 }).toEqual({ id, seq });

    const events = (
      await db.query<{ id: string; type: string; device_id: string | null; data: string }>(
        'select id, type, device_id, data from events where rollout_id = $1 order by id',
        [rolloutId],
      )
    ).rows;
    // No device was granted its slot twice.
    const grants = new Map<string, number>();
    for (const e of events) {
      if (e.type === 'update.notified') grants.set(e.device_id!, (grants.get(e.device_id!) ?? 0) + 1);
    }
    expect(grants.size).toBe(DEVICES);
    expect([...grants.values()].every((n) => n === 1)).toBe(true);
    // Replayed in id order, updates holding a slot never exceed max_concurrent. A report's event id comes
    // before a grant's only if it committed before the grant counted the slots, so the replay never counts
    // more than the grant saw.
    let active = 0;
    let most = 0;
    for (const e of events) {
      if (e.type === 'update.notified') {
        active += 1;
        most = Math.max(most, active);
      } else if (e.type.startsWith('update.')) {
        const d = JSON.parse(e.data) as { from?: string; to?: string };
        if (ACTIVE.has(d.from ?? '') && FINAL.has(d.to ?? '')) active -= 1;
      }
    }
    expect(active).toBe(0);
    expect(most).toBeLessThanOrEqual(MAX_CONCURRENT);
    expect(most).toBeGreaterThan(1); // contended, or this proved little

    // Heartbeats on several replicas recorded each device's coming online once.
    const status = await db.query<{ device_id: string; n: string }>(
      `select device_id, count(*) as n from events where type = 'device.status' group by device_id`,
    );
    expect(status.rows).toHaveLength(DEVICES);
    expect(status.rows.every((r) => Number(r.n) === 1)).toBe(true);

    // The event stream of each survivor delivered every event of the rollout, none skipped.
    const all = events.map((e) => Number(e.id));
    for (const [i, stream] of streams.entries()) {
      if (i === holder) continue;
      await eventually(
        `replica ${i}'s stream to have every event`,
        () => all.every((id) => stream.ids.has(id)),
        {
          timeoutMs: 60_000,
        },
      );
      stream.stop();
    }
  }, 180_000);
});
