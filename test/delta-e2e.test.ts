/**
 * Delta updates with a real `fleetd server` (building deltas with the real xdelta3) and a real `fleetd agent`:
 * an update taken as a delta rebuilds the exact image; a corrupted delta is refused and the full image is
 * downloaded and installed instead. The agent is stopped while each delta is built, so the offer it then
 * gets always carries the delta (a device that asks earlier is simply offered the full image).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Agent, type AgentOptions, startAgent } from './support/agents.js';
import { eventually } from './support/eventually.js';
import { type Operator, operator } from './support/fleet.js';
import { type ServerProcess, spawnServer, tempDir } from './support/processes.js';

let server: ServerProcess;
let data: string;
let op: Operator;
let agent: Agent | undefined;
let device: AgentOptions;
const stateDir = tempDir('fleetd-agent-');
const images = new Map<string, Buffer>();

interface DeltaJson {
  sha256: string;
  size: number;
  source_version: string;
  target_size: number;
  tool: string;
}

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

/** An image changed in a few places, as a package upgrade changes a few files of a root filesystem. */
function upgrade(image: Buffer, seed: number): Buffer {
  const next = Buffer.from(image);
  for (let i = 0; i < 8; i++)
    randomBytes(512).copy(next, ((seed * 7919 + i * 104_729) * 13) % (next.length - 512));
  return next;
}

function active(): { version: string | undefined; payload: Buffer | undefined } {
  const current = join(stateDir, 'current');
  if (!existsSync(current)) return { version: undefined, payload: undefined };
  const slot = join(stateDir, readlinkSync(current));
  const record = join(slot, 'release.json');
  if (!existsSync(record)) return { version: undefined, payload: undefined };
  return {
    version: JSON.parse(readFileSync(record, 'utf8')).version,
    payload: readFileSync(join(slot, 'payload')),
  };
}

async function rollTo(version: string): Promise<void> {
  const created = await op.call<{ id: string }>('POST', '/api/v1/rollouts', {
    name: `app ${version}`,
    release: `app@${version}`,
    filter: 'id=dev-1',
    strategy: 'immediate',
  });
  expect(created.status).toBe(201);
}

async function deltasTo(version: string): Promise<DeltaJson[]> {
  return readUntil(
    `a delta to ${version}`,
    async () =>
      (await op.call<{ deltas: DeltaJson[] }>('GET', `/api/v1/releases/app@${version}/deltas`)).body.deltas,
    (d) => d.length > 0,
  );
}

/** The agent of dev-1, started again on the state it had. */
async function restartAgent(): Promise<Agent> {
  agent = await startAgent(op, 'dev-1', { ...device, online: false });
  return agent;
}

const runs = (version: string) =>
  readUntil(
    'the device runs the release',
    async () => active().version,
    (v) => v === version,
  );

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
  images.set('1.0.0', randomBytes(2 * 1024 * 1024));
  images.set('2.0.0', upgrade(images.get('1.0.0')!, 1));
  images.set('3.0.0', upgrade(images.get('2.0.0')!, 2));
  for (const [version, bytes] of images) await op.upload(`name=app&version=${version}&hardware=box`, bytes);
  device = { hardware: 'box', firmware: '0.9.0', stateDir };
  agent = await startAgent(op, 'dev-1', { ...device, online: { timeoutMs: 60_000, intervalMs: 200 } });
  await rollTo('1.0.0'); // no release 0.9.0: the full image
  await runs('1.0.0');
}, 120_000);

afterAll(async () => {
  await agent?.kill('SIGKILL');
  await server.kill();
});

describe('delta updates with a real agent', () => {
  it('the device running 1.0.0 takes 2.0.0 as a delta and installs the exact image', async () => {
    await agent?.kill();
    await rollTo('2.0.0');
    const [delta] = await deltasTo('2.0.0');
    expect(delta).toMatchObject({ source_version: '1.0.0', tool: 'xdelta3' });
    expect(delta!.size).toBeLessThan(delta!.target_size / 10);
    const a = await restartAgent();
    await runs('2.0.0');
    expect(active().payload!.equals(images.get('2.0.0')!)).toBe(true);
    expect(a.output()).toContain('update rebuilt from a delta');
    expect(a.output()).not.toContain('delta not used');
  }, 120_000);

  it('a corrupted delta is refused: the full image is downloaded and the right one installed', async () => {
    await agent?.kill();
    await rollTo('3.0.0');
    const [delta] = await deltasTo('3.0.0');
    const blob = join(data, 'blobs', 'sha256', delta!.sha256.slice(0, 2), delta!.sha256);
    const bytes = readFileSync(blob);
    const middle = bytes.length >> 1;
    bytes[middle] = (bytes[middle] ?? 0) ^ 0xff;
    writeFileSync(blob, bytes);
    const a = await restartAgent();
    await runs('3.0.0');
    expect(active().payload!.equals(images.get('3.0.0')!)).toBe(true);
    expect(a.output()).toMatch(/delta not used; downloading the full image.*delta sha256 mismatch/);
    expect(a.output()).not.toContain('update rebuilt from a delta');
  }, 120_000);
});
