/**
 * Semantic versions (SemVer 2.0.0) and a string key whose byte-wise order is version precedence, so SQL
 * can compare firmware with a plain `<` on an indexed text column (binary / `COLLATE "C"`).
 *
 * Two parsers:
 * - `parseVersion` is strict SemVer (release manifests): `MAJOR.MINOR.PATCH[-pre][+build]`, optional leading `v`.
 * - `parseVersionLenient` also accepts `2.3` and `2` as 2.3.0 and 2.0.0 (what devices report, filter values).
 * `versionKey` and string arguments of `compareVersions` are lenient, so devices reporting `2.3` still sort.
 *
 * Limits, so that the key stays fixed-width and exact: MAJOR, MINOR and PATCH have at most 10 digits and
 * numeric prerelease identifiers at most 99 digits; longer numbers are "not a version".
 */
import { FleetError } from './errors.js';

export interface Version {
  major: number;
  minor: number;
  patch: number;
  /** Prerelease identifiers as written; numeric ones are digit strings without leading zeros. */
  prerelease: string[];
  /** Build metadata: kept for display, ignored by precedence. */
  build: string[];
}

const NUM = '0|[1-9]\\d{0,9}';
const PRE_ID = '0|[1-9]\\d{0,98}|\\d*[A-Za-z-][0-9A-Za-z-]*';
const TAIL = `(?:-((?:${PRE_ID})(?:\\.(?:${PRE_ID}))*))?(?:\\+([0-9A-Za-z-]+(?:\\.[0-9A-Za-z-]+)*))?$`;
const STRICT = new RegExp(`^[vV]?(${NUM})\\.(${NUM})\\.(${NUM})${TAIL}`);
const LENIENT = new RegExp(`^[vV]?(${NUM})(?:\\.(${NUM})(?:\\.(${NUM}))?)?${TAIL}`);
const NUMERIC = /^\d+$/;

function fromMatch(m: RegExpExecArray | null): Version | undefined {
  if (!m) return undefined;
  return {
    major: Number(m[1]),
    minor: Number(m[2] ?? 0),
    patch: Number(m[3] ?? 0),
    prerelease: m[4] === undefined ? [] : m[4].split('.'),
    build: m[5] === undefined ? [] : m[5].split('.'),
  };
}

/** Strict SemVer 2.0.0 with an optional leading `v`; undefined when the text is not a version. */
export function parseVersion(text: string): Version | undefined {
  return fromMatch(STRICT.exec(text));
}

/** As `parseVersion`, but a missing minor or patch counts as 0: `2.3` is 2.3.0, `v2` is 2.0.0. */
export function parseVersionLenient(text: string): Version | undefined {
  return fromMatch(LENIENT.exec(text));
}

export function formatVersion(v: Version): string {
  const pre = v.prerelease.length > 0 ? `-${v.prerelease.join('.')}` : '';
  const build = v.build.length > 0 ? `+${v.build.join('.')}` : '';
  return `${v.major}.${v.minor}.${v.patch}${pre}${build}`;
}

const sign = (n: number): -1 | 0 | 1 => (n < 0 ? -1 : n > 0 ? 1 : 0);

function compareIdentifiers(a: string, b: string): -1 | 0 | 1 {
  const an = NUMERIC.test(a);
  const bn = NUMERIC.test(b);
  if (an && bn) return a.length !== b.length ? sign(a.length - b.length) : a < b ? -1 : a > b ? 1 : 0;
  if (an !== bn) return an ? -1 : 1; // numeric identifiers sort below alphanumeric ones
  return a < b ? -1 : a > b ? 1 : 0;
}

function toVersion(v: Version | string): Version {
  if (typeof v !== 'string') return v;
  const parsed = parseVersionLenient(v);
  if (!parsed) throw new FleetError('VALIDATION', `"${v.slice(0, 80)}" is not a semantic version`);
  return parsed;
}

/**
 * SemVer precedence. Strings are parsed leniently (as `versionKey` does) and throw a VALIDATION
 * FleetError when they are not versions. Build metadata is ignored.
 */
export function compareVersions(a: Version | string, b: Version | string): -1 | 0 | 1 {
  const x = toVersion(a);
  const y = toVersion(b);
  const core = sign(x.major - y.major) || sign(x.minor - y.minor) || sign(x.patch - y.patch);
  if (core !== 0) return core;
  // A release sorts after its prereleases.
  if (x.prerelease.length === 0 || y.prerelease.length === 0) {
    return sign(y.prerelease.length - x.prerelease.length);
  }
  const n = Math.min(x.prerelease.length, y.prerelease.length);
  for (let i = 0; i < n; i++) {
    const c = compareIdentifiers(x.prerelease[i]!, y.prerelease[i]!);
    if (c !== 0) return c;
  }
  return sign(x.prerelease.length - y.prerelease.length);
}

const pad10 = (n: number) => String(n).padStart(10, '0');

/**
 * The sort key of a version: `0000000002.0000000010.0000000000` then `~` for a release (`~` sorts above
 * `-`, so a release follows its prereleases) or `-` and the prerelease identifiers joined by `!` (below
 * every identifier character, so a shorter list sorts first). A numeric identifier is `0`, its digit
 * count in two digits, then its digits; an alphanumeric one is `1` and its text.
 */
export function keyOf(v: Version): string {
  const core = `${pad10(v.major)}.${pad10(v.minor)}.${pad10(v.patch)}`;
  if (v.prerelease.length === 0) return `${core}~`;
  const ids = v.prerelease.map((id) =>
    NUMERIC.test(id) ? `0${String(id.length).padStart(2, '0')}${id}` : `1${id}`,
  );
  return `${core}-${ids.join('!')}`;
}

/** The sort key of a (leniently parsed) version; null when the text is not a version. */
export function versionKey(text: string): string | null {
  const v = parseVersionLenient(text);
  return v ? keyOf(v) : null;
}

/** Inclusive lower and exclusive upper bound; null is unbounded. Bounds compare by precedence. */
export interface VersionRange {
  lower: Version | null;
  upper: Version | null;
}

const version = (major: number, minor: number, patch: number, prerelease: string[] = []): Version => ({
  major,
  minor,
  patch,
  prerelease,
  build: [],
});
const MAX_NUMBER = 9_999_999_999;
/**
 * The lowest version with these numbers (`X.Y.Z-0`): as an exclusive upper bound it also excludes X.Y.Z's
 * prereleases. Null (unbounded) when a number overflows, as nothing can lie above the largest version.
 */
const floor = (major: number, minor: number, patch: number): Version | null =>
  Math.max(major, minor, patch) > MAX_NUMBER ? null : version(major, minor, patch, ['0']);

const X_RANGE = /^[vV]?(?:[xX*]|(0|[1-9]\d{0,9})\.(?:[xX*](?:\.[xX*])?|(0|[1-9]\d{0,9})\.[xX*]))$/;

/**
 * `^1.2.3` [1.2.3, 2.0.0-0), `^0.2.3` [0.2.3, 0.3.0-0), `^0.0.3` [0.0.3, 0.0.4-0), `~1.2.3` [1.2.3, 1.3.0-0),
 * `1.2.x` [1.2.0-0, 1.3.0-0), `1.x` [1.0.0-0, 2.0.0-0), `*` unbounded (`x`/`X`/`*` are interchangeable).
 * `^`/`~` need a full version and start at it; x-ranges cover every version with those numbers, prereleases
 * included. Upper bounds are `X.Y.Z-0`, so `^1.2.3` excludes 2.0.0-rc.1. A plain version is not a range.
 */
export function parseRange(text: string): VersionRange | undefined {
  const op = text[0];
  if (op === '^' || op === '~') {
    const v = parseVersion(text.slice(1));
    if (!v) return undefined;
    const lower = { ...v, build: [] };
    if (op === '~') return { lower, upper: floor(v.major, v.minor + 1, 0) };
    if (v.major > 0) return { lower, upper: floor(v.major + 1, 0, 0) };
    if (v.minor > 0) return { lower, upper: floor(0, v.minor + 1, 0) };
    return { lower, upper: floor(0, 0, v.patch + 1) };
  }
  const m = X_RANGE.exec(text);
  if (!m) return undefined;
  if (m[1] === undefined) return { lower: null, upper: null };
  const major = Number(m[1]);
  if (m[2] === undefined) return { lower: version(major, 0, 0, ['0']), upper: floor(major + 1, 0, 0) };
  const minor = Number(m[2]);
  return { lower: version(major, minor, 0, ['0']), upper: floor(major, minor + 1, 0) };
}

export function inRange(v: Version | string, range: VersionRange): boolean {
  return (
    (range.lower === null || compareVersions(v, range.lower) >= 0) &&
    (range.upper === null || compareVersions(v, range.upper) < 0)
  );
}
