import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  checkConfigDocument,
  checkConfigName,
  configDrift,
  configHash,
  desiredConfig,
  MAX_CONFIG_BYTES,
  mergePatch,
} from './config-document.js';

describe('configuration documents', () => {
  it('hashes the same document alike whatever the order of its keys', () => {
    expect(canonicalJson({ b: [1, { d: 2, c: 3 }], a: 'x' })).toBe('{"a":"x","b":[1,{"c":3,"d":2}]}');
    expect(configHash({ a: 1, b: { c: 2, d: 3 } })).toBe(configHash({ b: { d: 3, c: 2 }, a: 1 }));
    expect(configHash({ a: 1 })).not.toBe(configHash({ a: 2 }));
  });

  it('merges as RFC 7386 says: objects key by key, other values replace, null removes', () => {
    expect(mergePatch({ a: { b: 1, c: 2 }, l: [1, 2] }, { a: { c: null, d: 4 }, l: [3] })).toEqual({
      a: { b: 1, d: 4 },
      l: [3],
    });
    expect(mergePatch({ a: 1 }, { a: { b: null } })).toEqual({ a: {} });
  });

  it('merges the fleet, then filters, then the device, each tier by name', () => {
    const desired = desiredConfig([
      { name: 'a-device', version: 2, target: 'device', document: { x: 'device' } },
      { name: 'b-filter', version: 1, target: 'filter', document: { x: 'b', y: 'b' } },
      { name: 'a-filter', version: 5, target: 'filter', document: { x: 'a', y: 'a', z: 'a' } },
      { name: 'z-fleet', version: 1, target: 'fleet', document: { x: 'fleet', w: 'fleet' } },
    ]);
    expect(desired?.version).toBe('z-fleet@1+a-filter@5+b-filter@1+a-device@2');
    expect(desired?.document).toEqual({ w: 'fleet', x: 'device', y: 'b', z: 'a' });
    expect(desired?.hash).toBe(configHash({ w: 'fleet', x: 'device', y: 'b', z: 'a' }));
    expect(desiredConfig([])).toBeUndefined();
  });

  it('drifts only when something is desired and not exactly it applied', () => {
    expect(configDrift(null, null)).toBe(false);
    expect(configDrift(null, 'h')).toBe(false);
    expect(configDrift('h', null)).toBe(true);
    expect(configDrift('h', 'g')).toBe(true);
    expect(configDrift('h', 'h')).toBe(false);
  });

  it('refuses what is not a JSON object, too large or too deep, and bad names', () => {
    for (const bad of [null, [], 'x', 3]) expect(() => checkConfigDocument(bad)).toThrow(/JSON object/);
    expect(() => checkConfigDocument({ s: 'x'.repeat(MAX_CONFIG_BYTES) })).toThrow(/at most 65536/);
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 40; i++) deep = { d: deep };
    expect(() => checkConfigDocument(deep)).toThrow(/nested deeper/);
    expect(checkConfigDocument({ ok: [1, { two: null }] })).toEqual({ ok: [1, { two: null }] });
    expect(checkConfigName('site.east_1')).toBe('site.east_1');
    for (const bad of ['', '-x', 'a b', 'a/b', 'x'.repeat(65)])
      expect(() => checkConfigName(bad)).toThrow(/config name/);
  });
});
