import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { assignTargets, delegationsFromFile, delegationsToFile, parseDelegation } from './tuf-delegations.js';
import { expiring, warningWindows } from './tuf-expiry.js';
import { DEFAULT_LIFETIMES } from './tuf-plan.js';

const pem = () => generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
const entry = { length: 1, sha256: 'a'.repeat(64), custom: {} };
const input = (over: Record<string, unknown> = {}) => ({
  name: 'pos',
  paths: ['pos-firmware@*'],
  keys: [pem()],
  threshold: 1,
  terminating: false,
  ...over,
});

describe('parseDelegation', () => {
  it('takes a name, patterns over name@version and Ed25519 public keys', () => {
    const d = parseDelegation(input({ paths: ['pos-firmware@2.*', 'pos-firmware@2.*', 'pos-boot@?.0'] }));
    expect(d.paths).toEqual(['pos-firmware@2.*', 'pos-boot@?.0']);
    expect(Object.keys(d.keys)).toHaveLength(1);
  });

  it('refuses reserved or numeric names, slashes and brackets, keys of another kind and thresholds above the keys', () => {
    expect(() => parseDelegation(input({ name: 'snapshot' }))).toThrow(/not a delegated role name/);
    expect(() => parseDelegation(input({ name: '123' }))).toThrow(/not a delegated role name/);
    expect(() => parseDelegation(input({ paths: ['a/b'] }))).toThrow(/is not a pattern/);
    expect(() => parseDelegation(input({ paths: ['pos-[ab]'] }))).toThrow(/is not a pattern/);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 })
      .publicKey.export({ type: 'spki', format: 'pem' })
      .toString();
    expect(() => parseDelegation(input({ keys: [rsa] }))).toThrow(/keys\[0\] is not an Ed25519 public key/);
    const same = pem();
    expect(() => parseDelegation(input({ keys: [same, same], threshold: 2 }))).toThrow(
      /threshold must be from 1 to the number of keys, 1/,
    );
  });

  it('survives the file it is stored in', () => {
    const d = parseDelegation(input({ terminating: true }));
    expect(delegationsFromFile(delegationsToFile([d]))).toEqual([d]);
  });
});

describe('assignTargets', () => {
  it('lists each target in the first delegation that matches it, and the rest in the top-level targets', () => {
    const pos = parseDelegation(input());
    const all = parseDelegation(input({ name: 'all', paths: ['*'] }));
    const wanted = { 'pos-firmware@2.3.0': entry, 'kiosk@1.0.0': entry, 'pos-firmware-x@1': entry };
    expect(assignTargets(wanted, [pos])).toEqual({
      top: { 'kiosk@1.0.0': entry, 'pos-firmware-x@1': entry },
      roles: { pos: { 'pos-firmware@2.3.0': entry } },
    });
    expect(assignTargets(wanted, [pos, all]).roles).toEqual({
      pos: { 'pos-firmware@2.3.0': entry },
      all: { 'kiosk@1.0.0': entry, 'pos-firmware-x@1': entry },
    });
    expect(assignTargets(wanted, [])).toEqual({ top: wanted, roles: {} });
  });
});

describe('expiring, for delegated roles', () => {
  it('warns of a delegated role with its own window, after the top-level roles', () => {
    const windows = { ...warningWindows(DEFAULT_LIFETIMES), pos: 20 };
    expect(expiring({ pos: 10, root: 5, kiosk: 100 }, { ...windows, kiosk: 20 }, 0)).toEqual([
      { role: 'root', expiresMs: 5, leftMs: 5 },
      { role: 'pos', expiresMs: 10, leftMs: 10 },
    ]);
  });
});
