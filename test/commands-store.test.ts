/**
 * Remote commands in the store, on every backend: queued per device with its event, a bad device reported without
 * failing the others, delivered once and only within the command's concurrency, results recorded only from the
 * device the command was for, and expiry: a command past its deadline is never delivered and closes with an event.
 */
import { beforeEach, expect, it } from 'vitest';
import { DEFAULT_THRESHOLDS } from '../src/core/device.js';
import { parseFilter } from '../src/core/filter/index.js';
import type { SqlStore } from '../src/store/sql-store.js';
import type { TimeContext } from '../src/store/store.js';
import { forEachBackend } from './support/stores.js';

const NOW = Date.parse('2026-11-22T12:00:00Z');
const at = (ms: number): TimeContext => ({ now: NOW + ms, thresholds: DEFAULT_THRESHOLDS });
const ctx = at(0);
const TEN_MIN = 10 * 60_000;
const ok = { exitCode: 0, output: 'done\n', outputTruncated: false, error: null };

forEachBackend((backend) => {
  let store: SqlStore;
  beforeEach(async () => {
    store = await backend.open();
    await store.importDevices(
      [
        { id: 'pos-1', tags: { region: 'west' } },
        { id: 'pos-2', tags: { region: 'west' } },
        { id: 'pos-3', tags: { region: 'west' } },
        { id: 'gone' },
      ],
      ctx,
      'test',
    );
    await store.decommissionDevice('gone', ctx, 'test');
  });

  const reboot = (id: string, maxConcurrent = 10, expiresAt = NOW + TEN_MIN) => ({
    id,
    spec: { kind: 'reboot' as const },
    expiresAt,
    maxConcurrent,
  });

  it('queues a command per device with its events, and reports the devices it could not take', async () => {
    const { command, results } = await store.commands.create(
      reboot('cmd-1'),
      { ids: ['pos-1', 'nope', 'gone'] },
      ctx,
      'ops',
    );
    expect(results.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual([
      'ok',
      'DEVICE_NOT_FOUND',
      'DEVICE_DECOMMISSIONED',
    ]);
    expect(command).toMatchObject({
      id: 'cmd-1',
      spec: { kind: 'reboot' },
      counts: { queued: 1 },
      actor: 'ops',
    });
    const types = (await store.listEvents({ after: 0, limit: 100 })).map((e) => [
      e.type,
      e.deviceId,
      e.actor,
    ]);
    expect(types).toEqual(
      expect.arrayContaining([
        ['command.created', null, 'ops'],
        ['command.queued', 'pos-1', 'ops'],
      ]),
    );
    expect(
      (await store.commands.create(reboot('cmd-2'), { ids: ['nope'] }, ctx, 'ops')).command,
    ).toBeUndefined();
    expect(await store.commands.get('cmd-2')).toBeUndefined();
  });

  it('delivers each command once, to at most max_concurrent devices until results free their slots', async () => {
    await store.commands.create(
      reboot('cmd-1', 2),
      { filter: parseFilter('tag.region = west')! },
      ctx,
      'ops',
    );
    const first = await store.commands.deliver(['pos-1', 'pos-2', 'pos-3'], at(1));
    expect([...first.keys()]).toEqual(['pos-1', 'pos-2']);
    expect(first.get('pos-1')).toEqual([{ id: 'cmd-1', spec: { kind: 'reboot' }, expiresAt: NOW + TEN_MIN }]);
    expect((await store.commands.deliver(['pos-1', 'pos-2', 'pos-3'], at(2))).size).toBe(0);
    expect(await store.commands.nextInLine('cmd-1', NOW + 2)).toEqual([]);

    expect(await store.commands.recordResult('pos-1', 'cmd-1', ok, at(3))).toEqual({
      accepted: true,
      state: 'succeeded',
    });
    // A slot is free: pos-3 is next in line (whom the MQTT wake-up calls), until the deadline.
    expect(await store.commands.nextInLine('cmd-1', NOW + 3)).toEqual(['pos-3']);
    expect(await store.commands.nextInLine('cmd-1', NOW + TEN_MIN)).toEqual([]);
    // The same result again changes nothing.
    expect(await store.commands.recordResult('pos-1', 'cmd-1', ok, at(4))).toEqual({
      accepted: false,
      state: 'succeeded',
    });
    expect([...(await store.commands.deliver(['pos-3'], at(5))).keys()]).toEqual(['pos-3']);
    await store.commands.recordResult('pos-3', 'cmd-1', { ...ok, exitCode: 3, output: 'boom' }, at(6));
    const targets = await store.commands.targets('cmd-1', 10);
    expect(targets.map((t) => [t.deviceId, t.state, t.exitCode])).toEqual([
      ['pos-1', 'succeeded', 0],
      ['pos-2', 'delivered', null],
      ['pos-3', 'failed', 3],
    ]);
    expect((await store.commands.get('cmd-1'))?.counts).toEqual({ succeeded: 1, delivered: 1, failed: 1 });
    expect((await store.commands.ofDevice('pos-3', 10)).map((c) => [c.command.id, c.target.output])).toEqual([
      ['cmd-1', 'boom'],
    ]);
  });

  it('takes a result only from the device the command was for, and only once delivered', async () => {
    await store.commands.create(reboot('cmd-1'), { ids: ['pos-1', 'pos-2'] }, ctx, 'ops');
    await expect(store.commands.recordResult('pos-3', 'cmd-1', ok, at(1))).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await expect(store.commands.recordResult('pos-1', 'cmd-1', ok, at(1))).rejects.toMatchObject({
      code: 'TRANSITION_NOT_ALLOWED',
    });
    await store.commands.deliver(['pos-1'], at(2));
    await store.commands.recordResult(
      'pos-1',
      'cmd-1',
      { ...ok, logs: { base64: Buffer.from('log line\n').toString('base64'), bytes: 9 } },
      at(3),
    );
    expect(Buffer.from((await store.commands.logs('cmd-1', 'pos-1'))!, 'base64').toString()).toBe(
      'log line\n',
    );
    expect(await store.commands.logs('cmd-1', 'pos-2')).toBeUndefined();
  });

  it('never delivers a command past its deadline, and expires its open runs with an event each', async () => {
    await store.commands.create(reboot('cmd-1'), { ids: ['pos-1', 'pos-2'] }, ctx, 'ops');
    await store.commands.deliver(['pos-2'], at(1));
    expect((await store.commands.deliver(['pos-1'], at(TEN_MIN))).size).toBe(0);
    expect(await store.commands.expire(at(TEN_MIN))).toBe(2);
    expect(await store.commands.expire(at(TEN_MIN + 1))).toBe(0);
    const expired = (await store.listEvents({ after: 0, limit: 100 })).filter(
      (e) => e.type === 'command.expired',
    );
    expect(expired.map((e) => [e.deviceId, e.data.from])).toEqual([
      ['pos-1', 'queued'],
      ['pos-2', 'delivered'],
    ]);
    // A device that ran it and reports late is still heard; one that never had it is not.
    expect((await store.commands.recordResult('pos-2', 'cmd-1', ok, at(TEN_MIN + 2))).state).toBe(
      'succeeded',
    );
    await expect(store.commands.recordResult('pos-1', 'cmd-1', ok, at(TEN_MIN + 2))).rejects.toMatchObject({
      code: 'TRANSITION_NOT_ALLOWED',
    });
  });
});
