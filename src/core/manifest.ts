/**
 * The release manifest: the document a signature covers and a device verifies (docs/device-protocol.md).
 * Its canonical text is what gets signed and stored, byte for byte, so the same release always yields the
 * same bytes: fixed key order, no whitespace, hardware sorted and de-duplicated, `created` in UTC,
 * `version` without a leading `v`, `sha256` in lowercase.
 */
import { FleetError } from './errors.js';
import { formatVersion, parseVersion } from './semver.js';

export const RELEASE_TYPES = [
  'firmware',
  'file',
  'archive',
  'script',
  'app',
  'swu',
  'rauc',
  'package',
  'container',
  'bundle',
  'mender',
] as const;
export type ReleaseType = (typeof RELEASE_TYPES)[number];

export interface Manifest {
  name: string;
  version: string;
  type: ReleaseType;
  /** Compatible hardware types: sorted, unique, never empty. */
  hardware: string[];
  size: number;
  /** Lowercase hex. */
  sha256: string;
  /** ISO-8601 UTC, as `Date.prototype.toISOString` writes it. */
  created: string;
  allow_downgrade: boolean;
}

/** What callers build a manifest from: `created` may be any instant, hardware in any order. */
export type ManifestInput = Omit<Manifest, 'created' | 'hardware' | 'allow_downgrade'> & {
  hardware: readonly string[];
  created: string | number | Date;
  allow_downgrade?: boolean;
};

export interface ManifestIssue {
  field: string;
  message: string;
}

const KEYS = ['name', 'version', 'type', 'hardware', 'size', 'sha256', 'created', 'allow_downgrade'] as const;
const SHA256 = /^[0-9a-fA-F]{64}$/;
// A zone is required: an instant without one means different things on different machines.
const ISO_8601 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})$/;
// Control characters would make names unreadable in logs and terminals.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

/** The exact text to sign. Throws VALIDATION naming every bad field. */
export function canonicalManifest(m: ManifestInput): string {
  const { manifest, issues } = check({ ...m, created: instant(m.created) });
  if (!manifest) throw invalid(issues);
  return JSON.stringify(Object.fromEntries(KEYS.map((k) => [k, manifest[k]])));
}

/**
 * Parses and validates manifest text. With `requireCanonical`, text that is valid but not byte-identical
 * to its canonical form is refused: a server should store only canonical text, so a device's parser and
 * the server's can never read the same bytes differently (duplicate keys, odd escapes).
 */
export function parseManifest(text: string, opts: { requireCanonical?: boolean } = {}): Manifest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new FleetError('VALIDATION', `manifest is not JSON: ${(e as Error).message}`, undefined, {
      cause: e,
    });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new FleetError('VALIDATION', 'manifest must be a JSON object');
  }
  const { manifest, issues } = check(parsed as Record<string, unknown>);
  if (!manifest) throw invalid(issues);
  if (opts.requireCanonical && canonicalManifest(manifest) !== text) {
    throw new FleetError('VALIDATION', 'manifest is not in canonical form (see canonicalManifest)');
  }
  return manifest;
}

function check(m: Record<string, unknown>): { manifest?: Manifest; issues: ManifestIssue[] } {
  const issues: ManifestIssue[] = [];
  const bad = (field: string, message: string) => issues.push({ field, message });
  for (const key of Object.keys(m)) {
    if (!(KEYS as readonly string[]).includes(key)) bad(key, 'unknown field');
  }
  const { name, version, type, hardware, size, sha256, created, allow_downgrade } = m;

  if (typeof name !== 'string' || name.trim() === '') bad('name', 'must be a non-empty string');
  else if (name !== name.trim() || CONTROL.test(name) || name.length > 200) {
    bad('name', 'must have no surrounding spaces or control characters and at most 200 characters');
  }
  if (typeof version !== 'string') bad('version', 'must be a string');
  else if (parseVersion(version) === undefined) {
    bad('version', `"${clip(version)}" is not a semantic version`);
  }
  if (!RELEASE_TYPES.includes(type as ReleaseType)) bad('type', `must be one of ${RELEASE_TYPES.join('|')}`);
  if (!Array.isArray(hardware) || hardware.length === 0) bad('hardware', 'must be a non-empty array');
  else if (!hardware.every((h) => typeof h === 'string' && h !== '' && h === h.trim() && !CONTROL.test(h))) {
    bad(
      'hardware',
      'every entry must be a non-empty string without surrounding spaces or control characters',
    );
  }
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    bad('size', 'must be an integer ≥ 0 (bytes)');
  }
  if (typeof sha256 !== 'string' || !SHA256.test(sha256)) bad('sha256', 'must be 64 hex characters');
  const at = typeof created === 'string' ? parseInstant(created) : Number.NaN;
  if (Number.isNaN(at)) bad('created', 'must be an ISO-8601 instant with a zone, e.g. 2024-10-20T14:23:00Z');
  if (allow_downgrade !== undefined && typeof allow_downgrade !== 'boolean') {
    bad('allow_downgrade', 'must be true or false');
  }
  if (issues.length > 0) return { issues };
  return {
    issues,
    manifest: {
      name: name as string,
      version: formatVersion(parseVersion(version as string)!), // drops a leading `v`: one spelling per version
      type: type as ReleaseType,
      hardware: [...new Set(hardware as string[])].sort(),
      size: size as number,
      sha256: (sha256 as string).toLowerCase(),
      created: new Date(at).toISOString(),
      allow_downgrade: allow_downgrade === true,
    },
  };
}

/** Milliseconds, or NaN. Date.parse alone would accept 2024-02-30 and 24:00, so the fields are checked too. */
function parseInstant(text: string): number {
  const match = ISO_8601.exec(text);
  if (!match) return Number.NaN;
  const [y, mo, d, h] = match.slice(1, 5).map(Number) as [number, number, number, number];
  const calendarDay = new Date(0);
  calendarDay.setUTCFullYear(y, mo - 1, d); // unlike Date.UTC, keeps years 0–99 as written
  if (calendarDay.getUTCMonth() !== mo - 1 || calendarDay.getUTCDate() !== d || h > 23) return Number.NaN;
  const ms = Date.parse(text);
  // In UTC it must still have a 4-digit year (9999-12-31T23:00-05:00 does not), or the canonical text
  // would not parse again.
  return Number.isNaN(ms) || !ISO_8601.test(new Date(ms).toISOString()) ? Number.NaN : ms;
}

/** Any accepted instant as ISO-8601 UTC; a string without a zone is left for `check` to refuse. */
function instant(created: string | number | Date): string | undefined {
  if (typeof created === 'string') return created;
  const ms = typeof created === 'number' ? created : created.getTime();
  // toISOString throws beyond ±8.64e15 ms; such an instant is simply invalid.
  return Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : undefined;
}

function invalid(issues: ManifestIssue[]): FleetError {
  const text = issues.map((i) => `${i.field}: ${i.message}`).join('; ');
  return new FleetError('VALIDATION', `manifest invalid: ${text}`, { issues });
}

const clip = (s: string) => (s.length > 60 ? `${s.slice(0, 60)}…` : s);
