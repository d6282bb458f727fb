/**
 * Device groups on every store backend: `group = NAME` compiled to each SQL dialect for static and dynamic
 * groups (nested, negated), membership changes answered per device, selections by filter and rollout plans
 * resolving groups, and a group in use kept from deletion with its users named.
 */
import { beforeEach, expect, it } from 'vitest';
import { DEFAULT_THRESHOLDS } from '../src/core/device.js';
import { type FilterNode, parseFilter } from '../src/core/filter/index.js';
import type { SqlStore } from '../src/store/sql-store.js';
import type { TimeContext } from '../src/store/store.js';
import { forEachBackend } from './support/stores.js';

const ctx: TimeContext = { now: Date.parse('2026-11-22T12:00:00Z'), thresholds: DEFAULT_THRESHOLDS };

forEachBackend((backend) => {
  let store: SqlStore;
  const ids = async (filter: string): Promise<string[]> =>
    (await store.listDevices({ ...ctx, filter: parseFilter(filter), limit: 100 })).devices.map((d) => d.id);

  beforeEach(async () => {
    store = await backend.open();
    await store.importDevices(
      [
        { id: 'w1', tags: { region: 'west' } },
        { id: 'w2', tags: { region: 'west' } },
        { id: 'e1', tags: { region: 'east' } },
        { id: 'e2' },
      ],
      ctx,
      'test',
    );
    await store.groups.create({ id: 'grp_p', name: 'pilots', description: '', kind: 'static' }, ctx, 'ops');
    await store.groups.create(
      { id: 'grp_w', name: 'west', description: 'the west', kind: 'dynamic', filter: 'tag.region = west' },
      ctx,
      'ops',
    );
  });

  it('compiles static and dynamic groups, nested and negated, as filters', async () => {
    const added = await store.groups.addMembers('pilots', ['w1', 'e1', 'nope', 'e1'], ctx, 'ops');
    expect(added).toEqual([
      { id: 'w1', ok: true, changed: true },
      { id: 'e1', ok: true, changed: true },
      { id: 'nope', ok: false, error: { code: 'DEVICE_NOT_FOUND', message: 'device nope does not exist' } },
    ]);
    await store.groups.create(
      {
        id: 'grp_wp',
        name: 'west-pilots',
        description: '',
        kind: 'dynamic',
        filter: 'group = west and group = pilots',
      },
      ctx,
      'ops',
    );
    expect(await ids('group = pilots')).toEqual(['e1', 'w1']);
    expect(await ids('group != pilots')).toEqual(['e2', 'w2']);
    expect(await ids('group = west')).toEqual(['w1', 'w2']);
    expect(await ids('not group = west')).toEqual(['e1', 'e2']);
    expect(await ids('group = west-pilots')).toEqual(['w1']);
    expect(await ids('group != west-pilots')).toEqual(['e1', 'e2', 'w2']);
    expect(await ids('group in (west, pilots) and id != w2')).toEqual(['e1', 'w1']);
    expect(await store.countDevices(parseFilter('group = pilots'), ctx)).toBe(2);

    const removed = await store.groups.removeMembers('pilots', ['e1', 'w2'], ctx, 'ops');
    expect(removed).toEqual([
      { id: 'e1', ok: true, changed: true },
      { id: 'w2', ok: true, changed: false },
    ]);
    expect(await ids('group = pilots')).toEqual(['w1']);
    const events = await store.listEvents({ after: 0, limit: 100, typePrefix: 'group.' });
    expect(events.map((e) => e.type)).toEqual([
      'group.created',
      'group.created',
      'group.members_added',
      'group.created',
      'group.members_removed',
    ]);
  });

  it('resolves groups in selections by filter and in rollout plans', async () => {
    await store.groups.addMembers('pilots', ['e2'], ctx, 'ops');
    const tagged = await store.tags.edit(
      { set: { wave: '1' }, remove: [] },
      { filter: parseFilter('group = west or group = pilots')! },
      ctx,
      'ops',
    );
    expect(tagged.map((r) => r.id)).toEqual(['e2', 'w1', 'w2']);
    const plan = await store.rollouts.planDevices({ filter: parseFilter('group = west'), tagKey: null }, ctx);
    expect(plan.map((d) => d.id)).toEqual(['w1', 'w2']);
  });

  it('refuses an unknown group, a cycle and a static group given a filter, before writing', async () => {
    const refused = async (p: Promise<unknown>) =>
      p.then(
        () => undefined,
        (e: { code: string; message: string }) => e,
      );
    expect(await refused(store.countDevices(parseFilter('group = nope'), ctx))).toMatchObject({
      code: 'FILTER_SYNTAX',
      message: expect.stringContaining('group nope does not exist'),
    });
    await store.groups.create(
      { id: 'grp_a', name: 'a', description: '', kind: 'dynamic', filter: 'group = west' },
      ctx,
      'ops',
    );
    expect(await refused(store.groups.update('west', { filter: 'group = a' }, ctx, 'ops'))).toMatchObject({
      code: 'FILTER_SYNTAX',
      message: 'group west names itself: west → a → west',
    });
    expect(await refused(store.groups.update('pilots', { filter: 'id = w1' }, ctx, 'ops'))).toMatchObject({
      code: 'VALIDATION',
    });
    expect(
      await refused(
        store.groups.create({ id: 'x', name: 'west', description: '', kind: 'static' }, ctx, 'ops'),
      ),
    ).toMatchObject({
      code: 'CONFLICT',
    });
    expect(await refused(store.groups.addMembers('west', ['w1'], ctx, 'ops'))).toMatchObject({
      code: 'VALIDATION',
    });
    expect((await store.groups.get('west'))?.filter).toBe('tag.region = west');
  });

  it('keeps a group named by an open rollout, a scope or another group, and names them', async () => {
    await store.groups.create(
      { id: 'grp_a', name: 'a', description: '', kind: 'dynamic', filter: 'group = west' },
      ctx,
      'ops',
    );
    await store.principals.addToken(
      {
        id: 'tok_s',
        name: 'west-ops',
        role: 'operator',
        scope: 'group = west',
        createdAt: ctx.now,
        expiresAt: null,
        createdBy: null,
      },
      'hash-s',
      'ops',
    );
    const refusal = await store.groups.remove('west', ctx, 'ops').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refusal).toMatchObject({
      code: 'CONFLICT',
      message: 'group west is in use by token west-ops, group a; change those first',
      details: {
        used_by: [
          { kind: 'token', name: 'west-ops' },
          { kind: 'group', name: 'a' },
        ],
      },
    });
    await store.groups.remove('a', ctx, 'ops');
    await store.groups.addMembers('pilots', ['w1'], ctx, 'ops');
    await store.groups.remove('pilots', ctx, 'ops');
    expect((await store.groups.list()).map((g) => g.name)).toEqual(['west']);
    const filter: FilterNode | undefined = parseFilter('group = pilots');
    await expect(store.countDevices(filter, ctx)).rejects.toThrow(/group pilots does not exist/);
  });
});
