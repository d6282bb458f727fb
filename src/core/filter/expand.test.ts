import { describe, expect, it } from 'vitest';
import type { FilterNode } from './ast.js';
import { expandGroups, type GroupDefinition, groupNames, MAX_GROUP_DEPTH } from './expand.js';
import { parseFilter } from './parser.js';

const lookupOf =
  (groups: Record<string, GroupDefinition>) =>
  (name: string): GroupDefinition | undefined =>
    Object.hasOwn(groups, name) ? groups[name] : undefined;

describe('group terms', () => {
  it('parse as group nodes: = one, in any of several, != and not in their complement', () => {
    expect(parseFilter('group = stores-east')).toEqual({ kind: 'group', name: 'stores-east' });
    expect(parseFilter('group in (a, "b.c")')).toEqual({
      kind: 'or',
      children: [
        { kind: 'group', name: 'a' },
        { kind: 'group', name: 'b.c' },
      ],
    });
    expect(parseFilter('group != a')).toEqual({ kind: 'not', child: { kind: 'group', name: 'a' } });
    expect(groupNames(parseFilter('group = a and (tag.x = 1 or not group in (b, a))'))).toEqual(
      new Set(['a', 'b']),
    );
  });

  it('refuse a bad name and an ordering, with the column', () => {
    expect(() => parseFilter('group = "a b"')).toThrow(/column 9: invalid group name 'a b'/);
    expect(() => parseFilter('group < a')).toThrow(/column 7: '<' cannot compare group/);
  });
});

describe('expandGroups', () => {
  const groups = lookupOf({
    pilots: { id: 'grp_p', kind: 'static' },
    west: { id: 'grp_w', kind: 'dynamic', filter: 'tag.region = west' },
    'west-pilots': { id: 'grp_wp', kind: 'dynamic', filter: 'group = west and group = pilots' },
    loop1: { id: 'grp_l1', kind: 'dynamic', filter: 'group = loop2' },
    loop2: { id: 'grp_l2', kind: 'dynamic', filter: 'status = online or group = loop1' },
    self: { id: 'grp_s', kind: 'dynamic', filter: 'group = self' },
    ghost: { id: 'grp_g', kind: 'dynamic', filter: 'group = nowhere' },
  });

  it('leaves a filter without groups as it is (the same node)', () => {
    const node = parseFilter('tag.region = west');
    expect(expandGroups(node, groups)).toBe(node);
    expect(expandGroups(undefined, groups)).toBeUndefined();
  });

  it('makes a static group a membership test and a dynamic one its filter, nested ones too', () => {
    expect(expandGroups(parseFilter('group != pilots'), groups)).toEqual({
      kind: 'not',
      child: { kind: 'member', groupId: 'grp_p' },
    });
    expect(expandGroups(parseFilter('group = west-pilots and status = online'), groups)).toEqual({
      kind: 'and',
      children: [
        {
          kind: 'and',
          children: [
            { kind: 'tag', key: 'region', values: ['west'] },
            { kind: 'member', groupId: 'grp_p' },
          ],
        },
        { kind: 'status', values: ['online'] },
      ],
    });
  });

  it('refuses a cycle, an unknown group and nesting past the limit, saying which', () => {
    expect(() => expandGroups(parseFilter('group = loop1'), groups)).toThrow(
      'group loop1 names itself: loop1 → loop2 → loop1',
    );
    expect(() => expandGroups(parseFilter('group = self'), groups)).toThrow('self → self');
    expect(() => expandGroups(parseFilter('group = nope'), groups)).toThrow(/group nope does not exist/);
    expect(() => expandGroups(parseFilter('group = ghost'), groups)).toThrow(
      /group nowhere does not exist \(named by group ghost\)/,
    );
    const chain: Record<string, GroupDefinition> = {};
    for (let i = 0; i <= MAX_GROUP_DEPTH; i++) {
      chain[`g${i}`] = {
        id: `id${i}`,
        kind: 'dynamic',
        filter: i === MAX_GROUP_DEPTH ? 'id = x' : `group = g${i + 1}`,
      };
    }
    const deep = (name: string): FilterNode | undefined =>
      expandGroups(parseFilter(`group = ${name}`), lookupOf(chain));
    expect(() => deep('g0')).toThrow(`groups nest more than ${MAX_GROUP_DEPTH} deep`);
    expect(deep('g1')).toMatchObject({ kind: 'text', field: 'id', values: ['x'] });
  });
});
