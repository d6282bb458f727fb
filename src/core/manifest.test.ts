import { describe, expect, it } from 'vitest';
import { canonicalManifest, type ManifestInput, parseManifest } from './manifest.js';

const SHA = 'ab'.repeat(32);
const input: ManifestInput = {
  name: 'pos-firmware',
  version: '2.3.0',
  type: 'firmware',
  hardware: ['pos-x200', 'pos-x100', 'pos-x200'],
  size: 1048576,
  sha256: SHA.toUpperCase(),
  created: '2024-10-20T10:23:00-04:00',
  allow_downgrade: false,
};
const CANONICAL =
  '{"name":"pos-firmware","version":"2.3.0","type":"firmware","hardware":["pos-x100","pos-x200"],"size":1048576,' +
  `"sha256":"${SHA}","created":"2024-10-20T14:23:00.000Z","allow_downgrade":false}`;

const issuesOf = (text: string) => {
  try {
    parseManifest(text);
  } catch (e) {
    return (e as { details?: { issues: Array<{ field: string }> } }).details?.issues.map((i) => i.field);
  }
  return [];
};

describe('canonicalManifest', () => {
  it('writes fixed key order, no whitespace, sorted unique hardware, UTC created, lowercase hash', () => {
    expect(canonicalManifest(input)).toBe(CANONICAL);
  });

  it('is the same text whatever the key order and form of the input', () => {
    const reversed = Object.fromEntries(Object.entries(input).reverse()) as unknown as ManifestInput;
    expect(canonicalManifest(reversed)).toBe(CANONICAL);
    expect(canonicalManifest({ ...input, created: new Date('2024-10-20T14:23:00Z') })).toBe(CANONICAL);
    expect(canonicalManifest({ ...input, version: 'v2.3.0' })).toBe(CANONICAL);
    expect(canonicalManifest({ ...input, created: Date.parse('2024-10-20T14:23:00Z') })).toBe(CANONICAL);
    const { allow_downgrade: _, ...withoutFlag } = input;
    expect(canonicalManifest(withoutFlag)).toBe(CANONICAL);
    const shuffledText = JSON.stringify(reversed, null, 2);
    expect(canonicalManifest(parseManifest(shuffledText))).toBe(CANONICAL);
  });

  it('refuses to write an invalid manifest', () => {
    expect(() => canonicalManifest({ ...input, hardware: [] })).toThrow(
      /hardware: must be a non-empty array/,
    );
    expect(() => canonicalManifest({ ...input, created: new Date(Number.NaN) })).toThrow(/created/);
    expect(() => canonicalManifest({ ...input, created: 8.64e15 })).toThrow(/created/);
  });
});

describe('parseManifest', () => {
  it('round-trips canonical text', () => {
    expect(parseManifest(CANONICAL, { requireCanonical: true })).toEqual({
      ...input,
      hardware: ['pos-x100', 'pos-x200'],
      sha256: SHA,
      created: '2024-10-20T14:23:00.000Z',
    });
  });

  it('names each bad field', () => {
    const good = JSON.parse(CANONICAL) as Record<string, unknown>;
    const withField = (k: string, v: unknown) => JSON.stringify({ ...good, [k]: v });
    expect(issuesOf(withField('version', '2.3'))).toEqual(['version']);
    expect(() => parseManifest(withField('version', 'v2'))).toThrow(
      'manifest invalid: version: "v2" is not a semantic version',
    );
    expect(issuesOf(withField('type', 'firmwre'))).toEqual(['type']);
    expect(() => parseManifest(withField('type', 'x'))).toThrow(
      'type: must be one of firmware|file|archive|script|app|swu|rauc|package|container|bundle',
    );
    expect(issuesOf(withField('hardware', []))).toEqual(['hardware']);
    expect(issuesOf(withField('hardware', 'pos-x200'))).toEqual(['hardware']);
    expect(issuesOf(withField('hardware', ['pos-x200', '']))).toEqual(['hardware']);
    for (const size of [-1, 1.5, '10', 2 ** 53]) expect(issuesOf(withField('size', size))).toEqual(['size']);
    for (const sha of ['ab'.repeat(31), `${'ab'.repeat(31)}zz`, 42])
      expect(issuesOf(withField('sha256', sha))).toEqual(['sha256']);
    for (const c of [
      '2024-10-20',
      '2024-10-20T14:23:00',
      '2024-02-30T00:00:00Z',
      '2024-01-01T24:00:00Z',
      1729434180000,
    ]) {
      expect(issuesOf(withField('created', c))).toEqual(['created']);
    }
    expect(issuesOf(withField('allow_downgrade', 'yes'))).toEqual(['allow_downgrade']);
    expect(issuesOf(withField('name', ''))).toEqual(['name']);
    expect(issuesOf(withField('extra', 1))).toEqual(['extra']);
    expect(issuesOf(JSON.stringify({ ...good, size: -1, type: 'x' }))).toEqual(['type', 'size']);
  });

  it('refuses text that is not a JSON object', () => {
    expect(() => parseManifest('{"name":')).toThrow(/manifest is not JSON/);
    expect(() => parseManifest('[]')).toThrow('manifest must be a JSON object');
  });

  it("keeps the JSON parser's error as the cause of a refusal", () => {
    const refusal = (() => {
      try {
        parseManifest('{"name":');
      } catch (e) {
        return e;
      }
    })();
    expect(refusal).toMatchObject({ code: 'VALIDATION' });
    expect((refusal as Error).cause).toBeInstanceOf(SyntaxError);
  });

  it('can insist on the canonical bytes', () => {
    expect(() => parseManifest(`${CANONICAL}\n`, { requireCanonical: true })).toThrow(
      /not in canonical form/,
    );
    const duplicateKey = CANONICAL.replace('{"name":"pos-firmware"', '{"name":"other","name":"pos-firmware"');
    expect(parseManifest(duplicateKey).name).toBe('pos-firmware');
    expect(() => parseManifest(duplicateKey, { requireCanonical: true })).toThrow(/not in canonical form/);
  });
});
