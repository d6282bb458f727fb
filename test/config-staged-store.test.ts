/**
 * Staged configuration versions in the store, on every backend: a staged version changes no device until it is
 * released to it, a release reaches only the devices the version applies to (at most `count`, never twice), the
 * staged version is promoted to every device or dropped back to the current one, and a stale version number or a
 * document without a staged version is refused before anything is written.
 */
import { beforeEach, expect, it } from 'vitest';
import { configHash } from '../src/core/config-document.js';
import { DEFAULT_THRESHOLDS } from '../src/core/device.js';
import { parseFilter } from '../src/core/filter/index.js';
import type { SqlStore } from '../src/store/sql-store.js';
import type { TimeContext } from '../src/store/store.js';
import { forEachBackend } from './support/stores.js';

const NOW = Date.parse('2026-12-01T12:00:00Z');
const ctx: TimeContext = { now: NOW, thresholds: DEFAULT_THRESHOLDS };
const IDS = ['pos-1', 'pos-2', 'pos-3', 'pos-4'];

forEachBackend((backend) => {
  let store: SqlStore;
  beforeEach(async () => {
    store = await backend.open();
    await store.importDevices(
      IDS.map((id, i) => ({ id, tags: { region: i < 3 ? 'west' : 'east' } })),
      ctx,
      'test',
    );
  });

  const versions = async () => {
    const offers = await store.config.offers(IDS, ctx);
    return IDS.map((id) => offers.get(id)?.version ?? null);
  };
  const base = (document: Record<string, number>) => ({
    name: 'base',
    document,
    target: { kind: 'filter' as const, filter: 'tag.region = west' },
    scope: null,
  });

  it('keeps every device on the current version until the staged one is released to it, then promotes it', async () => {
    await store.config.set(base({ a: 1 }), ctx, 'ops');
    const { staged, changed } = await store.config.stage(base({ a: 2 }), ctx, 'ops');
    expect([changed, staged.version, staged.currentVersion]).toEqual([true, 2, 1]);
    expect(await versions()).toEqual(['base@1', 'base@1', 'base@1', null]);
    expect((await store.config.stage(base({ a: 2 }), ctx, 'ops')).changed).toBe(false);

    // A canary of one, then the rest of the devices it applies to: pos-4 (east) is never reached.
    const canary = await store.config.release('base', 2, { count: 1 }, null, ctx, 'ops');
    expect(canary.released).toBe(1);
    expect(await versions()).toEqual(['base@2', 'base@1', 'base@1', null]);
    const offer = (await store.config.offers(['pos-1'], ctx)).get('pos-1')!;
    expect(offer).toMatchObject({ hash: configHash({ a: 2 }), document: { a: 2 } });
    await store.config.report('pos-1', { version: offer.version, hash: offer.hash, result: 'applied' }, ctx);
    expect((await store.config.staged('base'))?.progress).toEqual({ released: 1, applied: 1, failed: 0 });

    const rest = await store.config.release('base', 2, {}, null, ctx, 'ops');
    expect(rest.released).toBe(2);
    expect(rest.staged.progress).toEqual({ released: 3, applied: 1, failed: 0 });
    expect(await versions()).toEqual(['base@2', 'base@2', 'base@2', null]);
    const two = (await store.config.offers(['pos-2'], ctx)).get('pos-2')!;
    await store.config.report('pos-2', { version: two.version, hash: two.hash, result: 'failed' }, ctx);
    expect((await store.config.staged('base'))?.progress).toEqual({ released: 3, applied: 1, failed: 1 });

    const promoted = await store.config.promote('base', 2, null, ctx, 'ops');
    expect(promoted).toMatchObject({ version: 2, hash: configHash({ a: 2 }), updatedBy: 'ops' });
    expect(await store.config.staged('base')).toBeUndefined();
    expect(await versions()).toEqual(['base@2', 'base@2', 'base@2', null]);
    // A device that comes to match the filter later takes the promoted version.
    await store.tags.edit({ set: { region: 'west' }, remove: [] }, { ids: ['pos-4'] }, ctx, 'ops');
    expect(await versions()).toEqual(['base@2', 'base@2', 'base@2', 'base@2']);
    const types = (await store.listEvents({ after: 0, limit: 100 })).map((e) => e.type);
    expect(types.filter((t) => t.startsWith('config.') && t !== 'config.applied')).toEqual([
      'config.set',
      'config.staged',
      'config.released',
      'config.released',
      'config.failed',
      'config.set',
    ]);
  });

  it('drops a staged version back to the current one; a new document staged reaches only its releases', async () => {
    await store.config.set(base({ a: 1 }), ctx, 'ops');
    await store.config.stage(base({ a: 2 }), ctx, 'ops');
    await store.config.release('base', 2, { filter: parseFilter('id in (pos-2, pos-3)')! }, null, ctx, 'ops');
    expect(await versions()).toEqual(['base@1', 'base@2', 'base@2', null]);
    // Staged again with other content: a new version that starts with no device.
    const again = await store.config.stage(base({ a: 3 }), ctx, 'ops');
    expect([again.staged.version, again.staged.progress.released]).toEqual([3, 0]);
    expect(await versions()).toEqual(['base@1', 'base@1', 'base@1', null]);
    await store.config.release('base', 3, { deviceId: 'pos-1' }, null, ctx, 'ops');
    expect(await versions()).toEqual(['base@3', 'base@1', 'base@1', null]);
    expect(await store.config.unstage('base', null, ctx, 'ops')).toMatchObject({ version: 3 });
    expect(await versions()).toEqual(['base@1', 'base@1', 'base@1', null]);

    // A document that has no current version yet: nothing is desired but where it was released.
    await store.config.stage({ ...base({ n: 1 }), name: 'fresh', target: { kind: 'fleet' } }, ctx, 'ops');
    expect(await store.config.get('fresh')).toBeUndefined();
    await store.config.release('fresh', 1, { deviceId: 'pos-4' }, null, ctx, 'ops');
    expect(await versions()).toEqual(['base@1', 'base@1', 'base@1', 'fresh@1']);
    // Setting it outright supersedes the staged version everywhere.
    const set = await store.config.set(
      { ...base({ n: 2 }), name: 'fresh', target: { kind: 'fleet' } },
      ctx,
      'ops',
    );
    expect(set.document.version).toBe(2);
    expect(await store.config.staged('fresh')).toBeUndefined();
    // The fleet-wide document merges first.
    expect(await versions()).toEqual(['fresh@2+base@1', 'fresh@2+base@1', 'fresh@2+base@1', 'fresh@2']);
  });

  it('refuses a stale version, a missing staged version and another scope before writing', async () => {
    await store.config.set(base({ a: 1 }), ctx, 'ops');
    await expect(store.config.release('base', 2, {}, null, ctx, 'ops')).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await store.config.stage(base({ a: 2 }), ctx, 'ops');
    await expect(store.config.release('base', 3, {}, null, ctx, 'ops')).rejects.toMatchObject({
      code: 'CONFLICT',
    });
    await expect(store.config.promote('base', 1, null, ctx, 'ops')).rejects.toMatchObject({
      code: 'CONFLICT',
    });
    await expect(store.config.release('base', 2, {}, 'tag.region = west', ctx, 'ops')).rejects.toMatchObject({
      code: 'FORBIDDEN',
    });
    expect((await store.config.staged('base'))?.progress.released).toBe(0);
    expect(await versions()).toEqual(['base@1', 'base@1', 'base@1', null]);
  });
});
