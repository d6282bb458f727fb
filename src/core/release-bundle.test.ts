import { describe, expect, it } from 'vitest';
import { componentsFor, parseBundleSpec, unmetRequirement } from './release-bundle.js';

const spec = (doc: object) => {
  const parsed = parseBundleSpec(JSON.stringify(doc));
  if ('problem' in parsed) throw new Error(parsed.problem);
  return parsed.spec;
};

describe('bundle description', () => {
  it('orders components by order, keeping the listed order on ties, and picks those for the hardware', () => {
    const s = spec({
      components: [
        { name: 'app', type: 'package', version: '2.0.0', file: 'app.deb', order: 2 },
        { name: 'fw', type: 'rauc', version: '12.5.0', file: 'fw.raucb', order: 1, hardware: ['v2'] },
        { name: 'config', type: 'file', version: '1.0.0', file: 'conf/app.json', order: 2 },
      ],
    });
    expect(s.components.map((c) => c.name)).toEqual(['fw', 'app', 'config']);
    expect(componentsFor(s, 'v1').map((c) => c.name)).toEqual(['app', 'config']);
  });

  it('names every problem at once: nesting, a path leaving the bundle, a bad version, a duplicate, a bad requirement', () => {
    const parsed = parseBundleSpec(
      JSON.stringify({
        components: [
          { name: 'a', type: 'bundle', version: '1.0.0', file: 'a' },
          { name: 'b', type: 'file', version: '1.0', file: '../etc/passwd' },
          { name: 'b', type: 'file', version: '1.0.0', file: 'b' },
        ],
        requires: ['base-os 12.4'],
      }),
    );
    expect('problem' in parsed && parsed.problem).toBe(
      'bundle.json: components[0].type: must be one of firmware|file|archive|script|app|swu|rauc|package|container; ' +
        'components[1].version: must be a semantic version; components[1].file: must be a relative path inside the bundle; ' +
        'components[2].name: "b" appears twice; requires: "base-os 12.4" is not NAME OP VERSION (OP one of >= > = <= <)',
    );
  });

  it('checks requirements against the installed versions, by version precedence', () => {
    const installed = new Map([['base-os', '12.10.0']]);
    const req = (text: string) =>
      spec({ components: [{ name: 'x', type: 'file', version: '1.0.0', file: 'x' }], requires: [text] })
        .requires;
    expect(unmetRequirement(req('base-os >= 12.4'), installed)).toBeUndefined();
    expect(unmetRequirement(req('base-os < 12.4'), installed)).toBe(
      'requires base-os < 12.4: base-os 12.10.0 is installed',
    );
    expect(unmetRequirement(req('base-os = 12.10.0'), installed)).toBeUndefined();
    expect(unmetRequirement(req('modem >= 1.0'), installed)).toBe(
      'requires modem >= 1.0: modem is not installed',
    );
  });
});
