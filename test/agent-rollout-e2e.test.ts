/**
 * Rollouts with real `fleetd agent` processes over HTTP: a progressive rollout with one download slot, a
 * second release, then a rollback that switches each device back to its other slot without a download.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Agent, activeVersion, startAgent } from './support/agents.js';
import { eventually } from './support/eventually.js';
import { type Operator, operator } from './support/fleet.js';
import { type ServerProcess, spawnServer, tempDir } from './support/processes.js';

let server: ServerProcess;
let data: string;
let op: Operator;
const agents: Agent[] = [];
const stateDirs = new Map<string, string>();
const IDS = ['till-1', 'till-2', 'till-3'];

interface EventJson {
  id: number;
  type: string;
  device_id: string | null;
  data: { update?: string };
}

/** `eventually` over a read: waits until `done` holds of what `read` gives; a timeout shows the last value. */
function readUntil<T>(what: string, read: () => Promise<T>, done: (v: T) => boolean): Promise<T> {
  return eventually(
    what,
    async () => {
      const value = await read();
      if (done(value)) return value;
      throw new Error(`still ${JSON.stringify(value).slice(-1500)}`);
    },
    { timeoutMs: 60_000, intervalMs: 200 },
  );
}

const rollout = (id: string) =>
  op
    .call<{ state: string; rollback: Record<string, number> | null }>('GET', `/api/v1/rollouts/${id}`)
    .then((r) => r.body);

async function events(rollout: string): Promise<EventJson[]> {
  return (
    await op.call<{ events: EventJson[] }>('GET', `/api/v1/events?rollout=${rollout}&type=update.&limit=1000`)
  ).body.events;
}

beforeAll(async () => {
  data = tempDir();
  server = await spawnServer(data, [
    '--heartbeat-interval',
    '1s',
    '--engine-interval',
    '200ms',
    '--log-level',
    'warn',
  ]);
  op = operator(server.url, data);
  for (const version of ['2.2.0', '2.3.0']) {
    await op.upload(
      `name=till-fw&version=${version}&hardware=till`,
      Buffer.alloc(150_000, `till firmware ${version} `),
    );
  }
  for (const id of IDS) {
    const agent = await startAgent(op, id, {
      hardware: 'till',
      firmware: '2.1.0',
      online: { timeoutMs: 60_000 },
    });
    agents.push(agent);
    stateDirs.set(id, agent.stateDir);
  }
});

afterAll(async () => {
  await Promise.all(agents.map((a) => a.kill('SIGKILL')));
  await server.kill();
});

describe('rollouts with real agents', () => {
  let second = '';

  it('a progressive rollout with one slot: canary first, never two downloading at once', async () => {
    const created = await op.call<{ id: string }>('POST', '/api/v1/rollouts', {
      name: 'tills 2.2.0',
      release: 'till-fw@2.2.0',
      filter: 'id=till-*',
      strategy: 'progressive',
      phases: [{ name: 'canary', percentage: 34, success_rate: 100 }, { percentage: 100 }],
      max_concurrent: 1,
    });
    expect(created.status).toBe(201);
    await readUntil(
      'rollout completed',
      () => rollout(created.body.id),
      (r) => r.state === 'completed',
    );
    // Events are in commit order: one device's update ends before the next one's slot is granted.
    let working = 0;
    let peak = 0;
    for (const e of await events(created.body.id)) {
      if (e.type === 'update.notified') peak = Math.max(peak, ++working);
      if (e.type === 'update.succeeded' || e.type === 'update.failed') working--;
    }
    expect(peak).toBe(1);
    for (const id of IDS) expect(activeVersion(stateDirs.get(id)!)).toBe('2.2.0');
  }, 120_000);

  it('rolling back the next release switches each till back to its other slot, downloading nothing', async () => {
    const created = await op.call<{ id: string }>('POST', '/api/v1/rollouts', {
      name: 'tills 2.3.0',
      release: 'till-fw@2.3.0',
      filter: 'id=till-*',
      strategy: 'immediate',
    });
    second = created.body.id;
    await readUntil(
      'second rollout completed',
      () => rollout(second),
      (r) => r.state === 'completed',
    );
    for (const id of IDS) expect(activeVersion(stateDirs.get(id)!)).toBe('2.3.0');

    expect((await op.call('POST', `/api/v1/rollouts/${second}/rollback`)).status).toBe(200);
    await readUntil(
      'every till back',
      () => rollout(second),
      (r) => (r.rollback?.succeeded ?? 0) === 3,
    );
    for (const id of IDS) expect(activeVersion(stateDirs.get(id)!)).toBe('2.2.0');
    const rollbackUpdates = new Set(
      (
        await op.call<{ updates: Array<{ id: string; purpose: string }> }>(
          'GET',
          `/api/v1/rollouts/${second}/updates`,
        )
      ).body.updates
        .filter((u) => u.purpose === 'rollback')
        .map((u) => u.id),
    );
    expect(rollbackUpdates.size).toBe(3);
    const rollbackEvents = (await events(second)).filter((e) => rollbackUpdates.has(e.data.update ?? ''));
    expect(rollbackEvents.some((e) => e.type === 'update.succeeded')).toBe(true);
    expect(rollbackEvents.filter((e) => e.type === 'update.downloading')).toEqual([]);
  }, 120_000);
});
