/**
 * A multi-component release (type `bundle`): one signed artifact, a tar archive holding `bundle.json` and a
 * file per component. The manifest's SHA-256 covers every byte of it, so the description inside is as
 * trusted as the release itself. `bundle.json`:
 *
 *   { "components": [ { "name": "firmware", "type": "rauc", "version": "12.5.0", "file": "fw.raucb",
 *                       "hardware": ["board-v2"], "order": 1 }, … ],
 *     "requires": ["base-os >= 12.4"] }
 *
 * Components install by ascending `order` (ties keep their listed order); one whose `hardware` does not name
 * the device is skipped. `requires` names releases or components the device must already run.
 */
import { RELEASE_TYPES, type ReleaseType } from './manifest.js';
import { compareVersions, parseVersion, parseVersionLenient } from './semver.js';

export const BUNDLE_DESCRIPTION = 'bundle.json';

/** What a component may be: any release type the agent installs, so not a bundle (no nesting) nor a Mender artifact. */
export type ComponentType = Exclude<ReleaseType, 'bundle' | 'mender'>;
export const COMPONENT_TYPES: readonly ComponentType[] = RELEASE_TYPES.filter(
  (t): t is ComponentType => t !== 'bundle' && t !== 'mender',
);

export interface BundleComponent {
  name: string;
  type: ComponentType;
  version: string;
  /** The component's file, relative to the bundle's root. */
  file: string;
  /** Absent: any hardware the release is for. */
  hardware?: string[];
  order: number;
}

export type Comparison = '>=' | '>' | '=' | '<=' | '<';

export interface Requirement {
  name: string;
  op: Comparison;
  version: string;
}

export interface BundleSpec {
  /** In install order. */
  components: BundleComponent[];
  requires: Requirement[];
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const FILE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}(\/[A-Za-z0-9][A-Za-z0-9._-]{0,199})*$/;
const REQUIREMENT = /^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(>=|<=|>|<|=)\s*(\S+)\s*$/;

/** The parsed description, or the reason it is refused (every problem named, so one fix is enough). */
export function parseBundleSpec(text: string): { spec: BundleSpec } | { problem: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return { problem: `${BUNDLE_DESCRIPTION} is not JSON: ${(e as Error).message}` };
  }
  const problems: string[] = [];
  const doc = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  const list = Array.isArray(doc.components) ? (doc.components as unknown[]) : [];
  if (list.length === 0) problems.push('components: must be a non-empty array');
  const components: BundleComponent[] = [];
  const names = new Set<string>();
  list.forEach((item, i) => {
    const c = (typeof item === 'object' && item !== null ? item : {}) as Record<string, unknown>;
    const at = `components[${i}]`;
    const before = problems.length;
    if (typeof c.name !== 'string' || !NAME.test(c.name)) problems.push(`${at}.name: letters, digits, . _ -`);
    else if (names.has(c.name)) problems.push(`${at}.name: "${c.name}" appears twice`);
    else names.add(c.name);
    if (!COMPONENT_TYPES.includes(c.type as ComponentType))
      problems.push(`${at}.type: must be one of ${COMPONENT_TYPES.join('|')}`);
    if (typeof c.version !== 'string' || parseVersion(c.version) === undefined)
      problems.push(`${at}.version: must be a semantic version`);
    if (typeof c.file !== 'string' || !FILE.test(c.file) || c.file.split('/').includes('..'))
      problems.push(`${at}.file: must be a relative path inside the bundle`);
    if (
      c.hardware !== undefined &&
      !(Array.isArray(c.hardware) && c.hardware.every((h) => typeof h === 'string' && h !== ''))
    )
      problems.push(`${at}.hardware: must be an array of hardware types`);
    if (c.order !== undefined && !Number.isSafeInteger(c.order))
      problems.push(`${at}.order: must be an integer`);
    if (problems.length > before) return;
    components.push({
      name: c.name as string,
      type: c.type as ComponentType,
      version: c.version as string,
      file: c.file as string,
      ...(c.hardware !== undefined ? { hardware: c.hardware as string[] } : {}),
      order: (c.order as number | undefined) ?? i,
    });
  });
  const requires: Requirement[] = [];
  const wanted = doc.requires === undefined ? [] : doc.requires;
  if (!Array.isArray(wanted)) problems.push('requires: must be an array such as ["base-os >= 12.4"]');
  else
    for (const r of wanted) {
      const parsed = typeof r === 'string' ? parseRequirement(r) : undefined;
      if (parsed) requires.push(parsed);
      else problems.push(`requires: "${String(r)}" is not NAME OP VERSION (OP one of >= > = <= <)`);
    }
  if (problems.length > 0) return { problem: `${BUNDLE_DESCRIPTION}: ${problems.join('; ')}` };
  // A stable sort: equal orders keep the order they were listed in.
  return { spec: { components: components.sort((a, b) => a.order - b.order), requires } };
}

export function parseRequirement(text: string): Requirement | undefined {
  const m = REQUIREMENT.exec(text);
  if (!m || parseVersionLenient(m[3]!) === undefined) return undefined;
  return { name: m[1]!, op: m[2] as Comparison, version: m[3]! };
}

/** The first requirement the installed versions (name → version) do not meet, as a reason; undefined if all hold. */
export function unmetRequirement(
  requires: Requirement[],
  installed: Map<string, string>,
): string | undefined {
  for (const r of requires) {
    const have = installed.get(r.name);
    const text = `requires ${r.name} ${r.op} ${r.version}`;
    if (have === undefined) return `${text}: ${r.name} is not installed`;
    if (parseVersionLenient(have) === undefined)
      return `${text}: installed version "${have}" is not a version`;
    const c = compareVersions(have, r.version);
    const holds =
      r.op === '>=' ? c >= 0 : r.op === '>' ? c > 0 : r.op === '=' ? c === 0 : r.op === '<=' ? c <= 0 : c < 0;
    if (!holds) return `${text}: ${r.name} ${have} is installed`;
  }
  return undefined;
}

/** The components this device installs, in order. */
export function componentsFor(spec: BundleSpec, hardwareType: string): BundleComponent[] {
  return spec.components.filter((c) => c.hardware === undefined || c.hardware.includes(hardwareType));
}
