import { describe, expect, it } from 'vitest';
import { isFleetError } from '../core/errors.js';
import { MAX_YAML_DEPTH, parseYamlBody } from './yaml-body.js';

const refusal = (text: string) => {
  try {
    parseYamlBody(text);
    return undefined;
  } catch (error) {
    return isFleetError(error) ? `${error.code}: ${error.message}` : String(error);
  }
};

describe('YAML request bodies', () => {
  it('a spec parses as before', () => {
    expect(
      parseYamlBody('name: a\nphases:\n  - percentage: 10\n  - {percentage: 100, wait: "1h"}\n'),
    ).toEqual({
      name: 'a',
      phases: [{ percentage: 10 }, { percentage: 100, wait: '1h' }],
    });
  });

  it('10,000 nested flow collections are refused before the parser recurses into them', () => {
    expect(refusal(`${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`)).toBe(
      `VALIDATION: spec: YAML nested deeper than ${MAX_YAML_DEPTH} levels`,
    );
    expect(refusal(`${'['.repeat(100_000)}${']'.repeat(100_000)}`)).toMatch(/nested deeper/);
  });

  it('brackets inside quoted strings and comments do not count', () => {
    expect(parseYamlBody(`filter: "${'['.repeat(200)}"\n# ${'{'.repeat(200)}\nname: b`)).toEqual({
      filter: '['.repeat(200),
      name: 'b',
    });
  });

  it('deep block nesting is refused too', () => {
    const text = Array.from({ length: 1_000 }, (_, i) => `${' '.repeat(i)}a:`).join('\n');
    expect(refusal(text)).toMatch(/nested deeper/);
  });

  it('bad YAML is still a VALIDATION error naming the spec', () => {
    expect(refusal('a: [1, 2')).toMatch(/^VALIDATION: spec: not valid YAML/);
  });
});
