import { describe, expect, it } from 'vitest';
import { parseRolloutSpec } from './spec.js';

const base = { name: 'r', release: 'fw@1.0.0', strategy: 'immediate' };

describe('a rollout spec targeting a group', () => {
  it('becomes one filter: the group term, and-ed with the filter when both are given', () => {
    expect(parseRolloutSpec({ ...base, group: 'stores-east' }).filter).toBe('group = "stores-east"');
    expect(parseRolloutSpec({ ...base, group: 'stores-east', filter: '' }).filter).toBe(
      'group = "stores-east"',
    );
    expect(parseRolloutSpec({ ...base, group: 'a.b', filter: 'firmware < 2.0.0' }).filter).toBe(
      'group = "a.b" and (firmware < 2.0.0)',
    );
    expect(parseRolloutSpec({ ...base, filter: '' }).filter).toBe('');
  });

  it('needs a filter or a group, a group name, and reports the filter with its own columns', () => {
    expect(() => parseRolloutSpec(base)).toThrow(
      'filter: is required ("" targets the whole fleet), unless group is given',
    );
    expect(() => parseRolloutSpec({ ...base, group: 'a b' })).toThrow(/^group: "a b" is not a group name/);
    expect(() => parseRolloutSpec({ ...base, group: 'g', filter: 'tag. = 1' })).toThrow(
      /^filter: column 5: invalid tag key/,
    );
  });
});
