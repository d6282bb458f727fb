/**
 * Remote configuration in the store, on every backend: documents merged in the stated order into each device's
 * desired configuration, a document set again unchanged keeps its version, drift clears when the device reports
 * the desired hash and comes back with a new version, `config.drift` in the filter language compiles to the same
 * answer in SQLite and PostgreSQL, and a document set under one scope is not another scope's to change.
 */
import { beforeEach, expect, it } from 'vitest';
import { configHash } from '../src/core/config-document.js';
import { DEFAULT_THRESHOLDS } from '../src/core/device.js';
import { parseFilter } from '../src/core/filter/index.js';
import type { SqlStore } from '../src/store/sql-store.js';
import type { TimeContext } from '../src/store/store.js';
import { forEachBackend } from './support/stores.js';

const NOW = Date.parse('2026-11-22T12:00:00Z');
const ctx: TimeContext = { now: NOW, thresholds: DEFAULT_THRESHOLDS };

forEachBackend((backend) => {
  let store: SqlStore;
  beforeEach(async () => {
    store = await backend.open();
    await store.importDevices(
      [
        { id: 'pos-1', tags: { region: 'west' } },
        { id: 'pos-2', tags: { region: 'east' } },
        { id: 'pos-3', tags: { region: 'west' } },
      ],
      ctx,
      'test',
    );
  });

  const drifting = async (filter: string) =>
    (await store.listDevices({ ...ctx, filter: parseFilter(filter), limit: 100 })).devices.map((d) => d.id);

  it('merges fleet, filter and device documents in that order, and drift clears on the desired hash', async () => {
    await store.config.set(
      {
        name: 'zz-base',
        document: { ntp: 'pool', log: { level: 'info', keep: 7 } },
        target: { kind: 'fleet' },
        scope: null,
      },
      ctx,
      'ops',
    );
    await store.config.set(
      {
        name: 'aa-west',
        document: { log: { level: 'debug', keep: null } },
        target: { kind: 'filter', filter: 'tag.region = west' },
        scope: null,
      },
      ctx,
      'ops',
    );
    await store.config.set(
      {
        name: 'pos-3-only',
        document: { ntp: 'local' },
        target: { kind: 'device', deviceId: 'pos-3' },
        scope: null,
      },
      ctx,
      'ops',
    );
    const offers = await store.config.offers(['pos-1', 'pos-2', 'pos-3'], ctx);
    // The fleet-wide document first although its name sorts last; a merge-patch null removes a key.
    expect(offers.get('pos-1')).toEqual({
      version: 'zz-base@1+aa-west@1',
      hash: configHash({ ntp: 'pool', log: { level: 'debug' } }),
      document: { ntp: 'pool', log: { level: 'debug' } },
    });
    expect(offers.get('pos-2')?.document).toEqual({ ntp: 'pool', log: { level: 'info', keep: 7 } });
    expect(offers.get('pos-3')?.version).toBe('zz-base@1+aa-west@1+pos-3-only@1');
    expect(offers.get('pos-3')?.document).toEqual({ ntp: 'local', log: { level: 'debug' } });
    expect(await drifting('config.drift = true')).toEqual(['pos-1', 'pos-2', 'pos-3']);

    const desired = offers.get('pos-1')!;
    const state = await store.config.report(
      'pos-1',
      { version: desired.version, hash: desired.hash, result: 'applied', output: 'ok\n' },
      ctx,
    );
    expect(state).toMatchObject({
      drift: false,
      applied: { hash: desired.hash },
      last: { result: 'applied', output: 'ok\n' },
    });
    await store.config.report(
      'pos-2',
      { version: 'x', hash: offers.get('pos-2')!.hash, result: 'failed', output: 'bad key' },
      ctx,
    );
    expect(await drifting('config.drift = true')).toEqual(['pos-2', 'pos-3']);
    expect(await drifting('config.drift = false')).toEqual(['pos-1']);
    expect(await drifting('config.drift != true and tag.region = west')).toEqual(['pos-1']);
    // The document rides along until the device reported on its hash, applied or failed.
    const next = await store.config.offers(['pos-1', 'pos-2', 'pos-3'], ctx);
    expect(next.get('pos-1')).toEqual({ version: desired.version, hash: desired.hash });
    expect(next.get('pos-2')).not.toHaveProperty('document');
    expect(next.get('pos-3')).toHaveProperty('document');
    const events = await store.listEvents({ after: 0, limit: 100 });
    expect(events.filter((e) => e.type.startsWith('config.')).map((e) => e.type)).toEqual([
      'config.set',
      'config.set',
      'config.set',
      'config.applied',
      'config.failed',
    ]);
  });

  it('keeps the version of a document set again unchanged; a change is a new version and drifts again', async () => {
    const doc = { name: 'base', document: { a: 1 }, target: { kind: 'fleet' as const }, scope: null };
    const first = await store.config.set(doc, ctx, 'ops');
    const again = await store.config.set({ ...doc, document: { a: 1 } }, ctx, 'ops');
    expect([first.changed, again.changed, again.document.version]).toEqual([true, false, 1]);
    await store.config.report(
      'pos-1',
      { version: 'base@1', hash: first.document.hash, result: 'applied' },
      ctx,
    );
    expect(await drifting('config.drift = false')).toEqual(['pos-1']);

    const changed = await store.config.set({ ...doc, document: { a: 2 } }, ctx, 'ops');
    expect(changed.document.version).toBe(2);
    expect(await drifting('config.drift = true')).toEqual(['pos-1', 'pos-2', 'pos-3']);
    expect((await store.config.ofDevice('pos-1', ctx))?.desired).toMatchObject({ version: 'base@2' });

    // Nothing desired, nothing drifts.
    expect(await store.config.remove('base', null, ctx, 'ops')).toMatchObject({ name: 'base' });
    expect(await drifting('config.drift = true')).toEqual([]);
    expect(await store.config.offers(['pos-1'], ctx)).toEqual(new Map());
  });

  it("follows a device into a filter's documents at its next heartbeat", async () => {
    await store.config.set(
      {
        name: 'east',
        document: { e: true },
        target: { kind: 'filter', filter: 'tag.region = east' },
        scope: null,
      },
      ctx,
      'ops',
    );
    expect([...(await store.config.offers(['pos-1', 'pos-2'], ctx)).keys()]).toEqual(['pos-2']);
    await store.tags.edit({ set: { region: 'east' }, remove: [] }, { ids: ['pos-1'] }, ctx, 'ops');
    expect((await store.config.offers(['pos-1'], ctx)).get('pos-1')?.document).toEqual({ e: true });
    expect(await drifting('config.drift = true')).toEqual(['pos-1', 'pos-2']);
  });

  it("reads a page of devices' configuration state in one batch, leaving out devices with no row", async () => {
    expect(await store.config.statesOf([])).toEqual(new Map());
    await store.config.set(
      {
        name: 'west',
        document: { log: 'debug' },
        target: { kind: 'filter', filter: 'tag.region = west' },
        scope: null,
      },
      ctx,
      'ops',
    );
    const states = await store.config.statesOf(['pos-1', 'pos-2', 'pos-3', 'nobody']);
    expect(states.get('pos-1')).toMatchObject({ desired: { version: 'west@1' }, applied: null, drift: true });
    expect(states.get('pos-3')?.drift).toBe(true);
    // Resolution writes a row only when a device should hold something: pos-2 (east) and an unknown id have none.
    expect(states.has('pos-2')).toBe(false);
    expect(states.has('nobody')).toBe(false);
  });

  it('applies a scoped document within its scope only, and leaves it to that scope', async () => {
    const scope = 'tag.region = west';
    await store.config.set(
      { name: 'west-team', document: { w: 1 }, target: { kind: 'fleet' }, scope },
      ctx,
      'alice',
    );
    expect(await drifting('config.drift = true')).toEqual(['pos-1', 'pos-3']);
    await expect(
      store.config.set(
        { name: 'west-team', document: { w: 2 }, target: { kind: 'fleet' }, scope: 'tag.region = east' },
        ctx,
        'bob',
      ),
    ).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(store.config.remove('west-team', 'tag.region = east', ctx, 'bob')).rejects.toMatchObject({
      code: 'FORBIDDEN',
    });
    await expect(
      store.config.set(
        { name: 'x', document: {}, target: { kind: 'device', deviceId: 'nope' }, scope: null },
        ctx,
        'ops',
      ),
    ).rejects.toMatchObject({ code: 'DEVICE_NOT_FOUND' });
  });
});
