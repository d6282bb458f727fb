import { describe, expect, it } from 'vitest';
import {
  applyCommand,
  buildCommand,
  canonicalDeltaManifest,
  type DeltaManifest,
  deltaSources,
  parseDeltaManifest,
} from './delta.js';

const hex = (c: string) => c.repeat(64);
const manifest: DeltaManifest = {
  tool: 'xdelta3',
  size: 1234,
  sha256: hex('a'),
  source_sha256: hex('b'),
  target_sha256: hex('c'),
};

describe('delta manifest', () => {
  it('is canonical: fixed key order, no whitespace, and parses back to itself', () => {
    const text = canonicalDeltaManifest({ ...manifest });
    expect(text.startsWith('{"tool":"xdelta3","size":1234,"sha256":')).toBe(true);
    expect(parseDeltaManifest(text)).toEqual(manifest);
  });

  it('refuses an unknown tool, a bad hash, an unknown field and text that is not an object', () => {
    expect(() => parseDeltaManifest(JSON.stringify({ ...manifest, tool: 'bsdiff' }))).toThrow(/tool/);
    expect(() => parseDeltaManifest(JSON.stringify({ ...manifest, sha256: 'ABC' }))).toThrow(/sha256/);
    expect(() => parseDeltaManifest(JSON.stringify({ ...manifest, extra: 1 }))).toThrow(
      /extra: unknown field/,
    );
    expect(() => parseDeltaManifest('[1]')).toThrow(/JSON object/);
    expect(() => parseDeltaManifest('{')).toThrow(/not JSON/);
  });
});

describe('delta commands', () => {
  const paths = { source: '/s', input: '/i', output: '/o' };
  it('xdelta3 encodes and decodes with the same bounded source window', () => {
    const b = buildCommand('xdelta3', paths);
    const a = applyCommand('xdelta3', paths);
    expect(b.args.slice(0, 1)).toEqual(['-e']);
    expect(a.args.slice(0, 1)).toEqual(['-d']);
    expect(b.args[b.args.indexOf('-B') + 1]).toBe(a.args[a.args.indexOf('-B') + 1]);
    expect(a.args.slice(-4)).toEqual(['-s', '/s', '/i', '/o']);
  });
  it('zstd applies with the window its build allowed', () => {
    expect(buildCommand('zstd', paths).args).toContain('--patch-from=/s');
    expect(applyCommand('zstd', paths).args).toEqual(
      expect.arrayContaining(['-d', '--long=31', '--patch-from=/s']),
    );
  });
});

describe('delta sources', () => {
  const r = (id: string, version: string, sha = id, name = 'app') => ({ id, name, version, sha256: sha });
  const target = r('t', '2.0.0');
  it('takes the releases of the same name whose versions run, not the target, not built already', () => {
    const releases = [
      r('a', '1.0.0'),
      r('b', '1.1.0'),
      r('c', '1.2.0'),
      target,
      r('x', '1.0.0', 'x', 'other'),
    ];
    const sources = deltaSources(target, ['1.0.0', '1.1.0', '2.0.0', '0.9.0'], releases, new Set(['b']));
    expect(sources.map((s) => s.id)).toEqual(['a']);
  });
  it('skips a release with the same bytes as the target', () => {
    expect(deltaSources(target, ['1.0.0'], [r('a', '1.0.0', 't')], new Set())).toEqual([]);
  });
});
