import { createHash, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  loadPublicKey,
  parseManifest,
  signatureValid,
  verifyArtifact,
  verifyRelease,
  verifyTarget,
} from './verify.js';

const { publicKey, privateKey } = generateKeyPairSync('ed25519');
const other = generateKeyPairSync('ed25519');

const payload = Buffer.from('firmware 2.3.0');
const manifestOf = (fields: Record<string, unknown> = {}) =>
  JSON.stringify({
    name: 'pos-firmware',
    version: '2.3.0',
    type: 'firmware',
    hardware: ['pos-x200', 'pos-x300'],
    size: payload.length,
    sha256: createHash('sha256').update(payload).digest('hex'),
    created: '2024-10-20T14:00:00Z',
    ...fields,
  });
const signed = (manifest: string, key: KeyObject = privateKey) =>
  sign(null, Buffer.from(manifest, 'utf8'), key).toString('base64');

const ctx = { publicKey, hardwareType: 'pos-x200', installedVersion: '2.1.0' };

describe('release verification', () => {
  it('accepts a signed manifest for this hardware and a newer version', () => {
    const manifest = manifestOf();
    const result = verifyRelease(manifest, signed(manifest), ctx);
    expect(result).toMatchObject({
      ok: true,
      value: { version: '2.3.0', type: 'firmware', allow_downgrade: false },
    });
  });

  it('checks the signature over the exact bytes, before parsing anything', () => {
    const manifest = manifestOf();
    const sig = signed(manifest);
    // the same JSON, reformatted: the bytes differ, so the signature does not hold
    const reformatted = JSON.stringify(JSON.parse(manifest), null, 1);
    expect(verifyRelease(reformatted, sig, ctx)).toEqual({ ok: false, reason: 'signature mismatch' });
    expect(verifyRelease(manifest, signed(manifest, other.privateKey), ctx)).toEqual({
      ok: false,
      reason: 'signature mismatch',
    });
    expect(verifyRelease('not json', signed('not json', other.privateKey), ctx)).toEqual({
      ok: false,
      reason: 'signature mismatch',
    });
    expect(signatureValid(manifest, 'short', publicKey)).toBe(false);
  });

  it('names the hardware it is not for', () => {
    const manifest = manifestOf({ hardware: ['pos-x200'] });
    expect(verifyRelease(manifest, signed(manifest), { ...ctx, hardwareType: 'pos-x100' })).toEqual({
      ok: false,
      reason: 'hardware pos-x100 not in [pos-x200]',
    });
  });

  it('refuses a downgrade unless the release allows it', () => {
    const old = manifestOf({ version: '2.1.0' });
    expect(verifyRelease(old, signed(old), { ...ctx, installedVersion: '2.3.0' })).toEqual({
      ok: false,
      reason: 'downgrade 2.3.0 → 2.1.0 refused',
    });
    const rollback = manifestOf({ version: '2.1.0', allow_downgrade: true });
    expect(verifyRelease(rollback, signed(rollback), { ...ctx, installedVersion: '2.3.0' }).ok).toBe(true);
    // same version again, a loose device version, or none known: not a downgrade
    const same = manifestOf({ version: '2.3.0' });
    expect(verifyRelease(same, signed(same), { ...ctx, installedVersion: '2.3.0' }).ok).toBe(true);
    expect(verifyRelease(same, signed(same), { ...ctx, installedVersion: '2.4' }).ok).toBe(false);
    expect(verifyRelease(same, signed(same), { ...ctx, installedVersion: 'vendor-build-7' }).ok).toBe(true);
    expect(verifyRelease(same, signed(same), { ...ctx, installedVersion: undefined }).ok).toBe(true);
  });

  it('rejects a signed but malformed manifest', () => {
    for (const [fields, reason] of [
      [{ version: 'latest' }, 'manifest invalid: version'],
      [{ type: 'rpm' }, 'manifest invalid: type'],
      [{ sha256: 'abc' }, 'manifest invalid: sha256'],
      [{ size: -1 }, 'manifest invalid: size'],
      [{ hardware: 'pos-x200' }, 'manifest invalid: hardware'],
    ] as const) {
      const manifest = manifestOf(fields);
      const verdict = verifyRelease(manifest, signed(manifest), ctx);
      expect(verdict.ok).toBe(false);
      expect(verdict.ok ? '' : verdict.reason).toMatch(new RegExp(`^${reason}\\b`));
    }
    const array = parseManifest('[]');
    expect(array.ok ? '' : array.reason).toMatch(/^manifest must be a JSON object/);
  });

  it('checks the downloaded file against size and sha256', () => {
    const m = parseManifest(manifestOf());
    if (!m.ok) throw new Error(m.reason);
    const good = createHash('sha256').update(payload).digest('hex');
    expect(verifyArtifact(m.value, { size: payload.length, sha256: good }).ok).toBe(true);
    expect(verifyArtifact(m.value, { size: payload.length + 1, sha256: good })).toEqual({
      ok: false,
      reason: `size mismatch: expected ${payload.length} bytes, got ${payload.length + 1}`,
    });
    expect(verifyArtifact(m.value, { size: payload.length, sha256: '0'.repeat(64) })).toEqual({
      ok: false,
      reason: 'sha256 mismatch',
    });
  });

  it('checks a file against a TUF target entry: length and sha256, and nothing without a sha256', () => {
    const sha256 = createHash('sha256').update(payload).digest('hex');
    const target = { length: payload.length, hashes: { sha256 } };
    expect(verifyTarget(target, { size: payload.length, sha256 })).toBe(true);
    expect(
      verifyTarget(
        { ...target, hashes: { sha256: sha256.toUpperCase() } },
        { size: payload.length, sha256: sha256.toUpperCase() },
      ),
    ).toBe(true);
    expect(verifyTarget(target, { size: payload.length + 1, sha256 })).toBe(false);
    expect(
      verifyTarget(target, {
        size: payload.length,
        sha256: sha256.replace(/^./, (c) => (c === '0' ? '1' : '0')),
      }),
    ).toBe(false);
    expect(
      verifyTarget({ length: payload.length, hashes: { sha512: sha256 } }, { size: payload.length, sha256 }),
    ).toBe(false);
  });

  it('loads the pinned key as PEM or raw base64, and only Ed25519', () => {
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url').toString('base64');
    const manifest = manifestOf();
    for (const text of [pem, raw, `${raw}\n`]) {
      expect(verifyRelease(manifest, signed(manifest), { ...ctx, publicKey: loadPublicKey(text) }).ok).toBe(
        true,
      );
    }
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({
      type: 'spki',
      format: 'pem',
    });
    expect(() => loadPublicKey(rsa.toString())).toThrow(/expected an Ed25519 key/);
  });
});
