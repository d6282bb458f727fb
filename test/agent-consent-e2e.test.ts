/**
 * The agent's consent hook with a real `fleetd agent` process and a real server: a hook that always answers
 * "defer" (exit 75) puts a soft update off through the server twice, within the rollout's budget of two; the
 * update is then offered forced, so the agent installs it without asking the hook a third time.
 */
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Agent, activeVersion, startAgent } from './support/agents.js';
import { eventually } from './support/eventually.js';
import { type Operator, operator } from './support/fleet.js';
import { type ServerProcess, spawnServer, tempDir } from './support/processes.js';

let server: ServerProcess;
let data: string;
let op: Operator;
let agent: Agent | undefined;
let asked: string;

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
  await op.upload('name=till-fw&version=2.2.0&hardware=till', Buffer.alloc(100_000, 'till firmware 2.2.0 '));

  // The hook notes each question (the release it was told about) and always defers, for 2 s.
  const dir = tempDir('fleetd-hook-');
  asked = join(dir, 'asked');
  const hook = join(dir, 'consent.sh');
  writeFileSync(
    hook,
    `#!/bin/sh\necho "$FLEETD_RELEASE_NAME@$FLEETD_RELEASE_VERSION $FLEETD_UPDATE_ID" >> "${asked}"\necho 2s\nexit 75\n`,
  );
  chmodSync(hook, 0o755);
  agent = await startAgent(op, 'till-1', {
    hardware: 'till',
    firmware: '2.1.0',
    flags: ['--consent-hook', hook],
    online: { timeoutMs: 180_000, intervalMs: 200 },
  });
}, 240_000);

afterAll(async () => {
  await agent?.kill('SIGKILL');
  await server.kill();
});

describe('the consent hook', () => {
  it('defers a soft update twice through the server, then the spent budget forces the install', async () => {
    const created = await op.call<{ id: string }>('POST', '/api/v1/rollouts', {
      name: 'soft 2.2.0',
      release: 'till-fw@2.2.0',
      filter: 'id = till-1',
      strategy: 'immediate',
      action: 'soft',
      deferral: { max_count: 2 },
    });
    expect(created.status).toBe(201);
    await eventually(
      'the update installed',
      async () => {
        const version = activeVersion(agent!.stateDir);
        if (version !== '2.2.0') throw new Error(`still ${version}\n${agent!.output().slice(-2000)}`);
        return true;
      },
      { timeoutMs: 180_000, intervalMs: 200 },
    );
    const lines = readFileSync(asked, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^till-fw@2\.2\.0 \S+$/);
    const shown = await op.call<{ deferrals: Array<{ count: number; rollout_id: string }> }>(
      'GET',
      '/api/v1/devices/till-1/windows',
    );
    expect(shown.body.deferrals).toMatchObject([{ count: 2, rollout_id: created.body.id }]);
    // The install is reported once committed.
    const types = await eventually(
      'the update reported succeeded',
      async () => {
        const events = await op.call<{ events: Array<{ type: string }> }>(
          'GET',
          `/api/v1/events?rollout=${created.body.id}&type=update.&limit=1000`,
        );
        const seen = events.body.events.map((e) => e.type);
        if (!seen.includes('update.succeeded')) throw new Error(`still ${seen.join(', ')}`);
        return seen;
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    expect(types.filter((t) => t === 'update.deferred')).toHaveLength(2);
  }, 240_000);
});
