/**
 * Tag edits on every store backend: by id and by filter, removal, one `device.tagged` event (before and after) per
 * device changed, and a bad device in a batch reported without failing its neighbours; over the API, a bad edit
 * is refused before anything is written.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_THRESHOLDS } from '../src/core/device.js';
import { parseFilter } from '../src/core/filter/index.js';
import { applyTagEdit, parseTagWords } from '../src/core/tag-edit.js';
import type { SqlStore } from '../src/store/sql-store.js';
import type { TimeContext } from '../src/store/store.js';
import { type TestApp, testApp } from './support/app.js';
import { forEachBackend } from './support/stores.js';

const ctx: TimeContext = { now: Date.parse('2026-11-22T12:00:00Z'), thresholds: DEFAULT_THRESHOLDS };

describe('tag words', () => {
  it('reads key=value as a set and key- as a removal', () => {
    expect(parseTagWords(['region=west', 'store=12', 'old-'])).toEqual({
      set: { region: 'west', store: '12' },
      remove: ['old'],
    });
  });

  it('refuses a word that is neither, a bad key, and one key both set and removed', () => {
    expect(() => parseTagWords(['region'])).toThrow(/key=value/);
    expect(() => parseTagWords(['bad key=1'])).toThrow(/not a tag key/);
    expect(() => parseTagWords(['a=1', 'a-'])).toThrow(/both set and removed/);
  });

  it('says when an edit changes nothing', () => {
    expect(applyTagEdit({ a: '1' }, { set: { a: '1' }, remove: ['b'] })).toEqual({
      ok: true,
      after: { a: '1' },
      changed: false,
    });
  });
});

forEachBackend((backend) => {
  let store: SqlStore;
  beforeEach(async () => {
    store = await backend.open();
    await store.importDevices(
      [
        { id: 'pos-1', tags: { region: 'west', old: 'x' } },
        { id: 'pos-2', tags: { region: 'west' } },
        { id: 'pos-3', tags: { region: 'east' } },
        { id: 'gone' },
      ],
      ctx,
      'test',
    );
    await store.decommissionDevice('gone', ctx, 'test');
  });

  it('sets and removes tags on one device, with its event and the filter index kept in step', async () => {
    const results = await store.tags.edit(
      { set: { store: '12' }, remove: ['old'] },
      { ids: ['pos-1'] },
      ctx,
      'ops',
    );
    expect(results).toEqual([
      { id: 'pos-1', ok: true, tags: { region: 'west', store: '12' }, changed: true },
    ]);
    expect((await store.getDevice('pos-1', ctx))?.tags).toEqual({ region: 'west', store: '12' });
    expect(await store.countDevices(parseFilter('tag.store = 12'), ctx)).toBe(1);
    expect(await store.countDevices(parseFilter('tag.old = x'), ctx)).toBe(0);
    const events = await store.listEvents({ after: 0, limit: 100, deviceId: 'pos-1' });
    const tagged = events.filter((e) => e.type === 'device.tagged');
    expect(tagged).toHaveLength(1);
    expect(tagged[0]).toMatchObject({
      actor: 'ops',
      data: { before: { region: 'west', old: 'x' }, after: { region: 'west', store: '12' } },
    });
  });

  it('edits every device a filter selects, and writes no event for a device it leaves unchanged', async () => {
    await store.tags.edit({ set: { wave: '1' }, remove: [] }, { ids: ['pos-2'] }, ctx, 'ops');
    const results = await store.tags.edit(
      { set: { wave: '1' }, remove: [] },
      { filter: parseFilter('tag.region = west')! },
      ctx,
      'ops',
    );
    expect(results.map((r) => [r.id, r.ok && r.changed])).toEqual([
      ['pos-1', true],
      ['pos-2', false],
    ]);
    const tagged = (await store.listEvents({ after: 0, limit: 100 })).filter(
      (e) => e.type === 'device.tagged',
    );
    expect(tagged.map((e) => e.deviceId)).toEqual(['pos-2', 'pos-1']);
  });

  it('reports an unknown, a decommissioned and an over-full device without failing their neighbours', async () => {
    const many = Object.fromEntries(Array.from({ length: 63 }, (_, i) => [`k${i}`, 'v']));
    await store.importDevices([{ id: 'full', tags: { ...many, last: 'v' } }], ctx, 'test');
    const results = await store.tags.edit(
      { set: { wave: '2' }, remove: [] },
      { ids: ['pos-3', 'nope', 'gone', 'full'] },
      ctx,
      'ops',
    );
    expect(results.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual([
      'ok',
      'DEVICE_NOT_FOUND',
      'DEVICE_DECOMMISSIONED',
      'VALIDATION',
    ]);
    expect((await store.getDevice('pos-3', ctx))?.tags).toEqual({ region: 'east', wave: '2' });
    expect((await store.getDevice('full', ctx))?.tags).not.toHaveProperty('wave');
  });
});

describe('the tag API', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await testApp();
    await t.store.importDevices(
      [{ id: 'pos-1', tags: { region: 'west' } }],
      { ...ctx, now: t.clock.now() },
      'test',
    );
    return () => t.close();
  });

  const post = (payload: unknown) =>
    t.app.inject({
      method: 'POST',
      url: '/api/v1/devices/tags',
      headers: t.admin,
      payload: payload as object,
    });

  it('edits by filter and answers one result per device', async () => {
    const r = await post({ filter: 'tag.region = west', set: { store: '7' }, remove: ['region'] });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({
      results: [{ id: 'pos-1', ok: true, tags: { store: '7' }, changed: true }],
      changed: 1,
    });
  });

  it('refuses a bad edit or filter with a 4xx before writing anything', async () => {
    const cases = [
      { ids: ['pos-1'] },
      { ids: ['pos-1'], set: { a: '1' }, remove: ['a'] },
      { ids: ['pos-1'], set: { 'bad key': '1' } },
      { filter: 'tag.region = (', set: { a: '1' } },
    ];
    for (const payload of cases) {
      const r = await post(payload);
      expect(r.statusCode, JSON.stringify(payload)).toBe(400);
      expect(r.json().error.code).toMatch(/VALIDATION|FILTER_SYNTAX/);
    }
    const tagged = (await t.store.listEvents({ after: 0, limit: 100 })).filter(
      (e) => e.type === 'device.tagged',
    );
    expect(tagged).toHaveLength(0);
  });
});
