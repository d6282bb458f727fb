/**
 * Binary deltas between two releases of one artifact: which tool makes and applies them, the argument lists
 * both ends run, and the signed delta manifest. Pure: the server and the agent spawn the commands.
 *
 * The device's memory is what bounds the choice: `xdelta3` holds a fixed source window (`-B`, 64 MiB here)
 * whatever the image size, while `zstd --patch-from` holds the whole source image in memory on both ends.
 * BENCHMARKS.md has the sizes and times measured for both.
 */
import { FleetError } from './errors.js';

export const DELTA_TOOLS = ['xdelta3', 'zstd'] as const;
export type DeltaTool = (typeof DELTA_TOOLS)[number];
export const DEFAULT_DELTA_TOOL: DeltaTool = 'xdelta3';

/**
 * xdelta3's source window: the memory a build or an apply holds for the source, whatever its size. `-D` keeps
 * xdelta3 from gunzipping inputs and gzipping the output again: a device's gzip could write other bytes.
 */
const XDELTA_SOURCE_WINDOW = String(64 * 1024 * 1024);

export interface DeltaPaths {
  /** The image the device runs now. */
  source: string;
  /** build: the new image; apply: the delta. */
  input: string;
  output: string;
}

export interface ToolCommand {
  command: string;
  args: string[];
}

/** The command that makes a delta from `source` to `input` (the target) into `output`. */
export function buildCommand(tool: DeltaTool, p: DeltaPaths): ToolCommand {
  if (tool === 'xdelta3') {
    return {
      command: 'xdelta3',
      args: ['-e', '-9', '-D', '-f', '-B', XDELTA_SOURCE_WINDOW, '-s', p.source, p.input, p.output],
    };
  }
  // --long=31 lets the match window span a source of up to 2 GiB; the apply side must then allow it too.
  return {
    command: 'zstd',
    args: ['-q', '-f', '-19', '--long=31', `--patch-from=${p.source}`, p.input, '-o', p.output],
  };
}

/** The command that rebuilds the target image from `source` and the delta `input` into `output`. */
export function applyCommand(tool: DeltaTool, p: DeltaPaths): ToolCommand {
  if (tool === 'xdelta3') {
    return {
      command: 'xdelta3',
      args: ['-d', '-D', '-f', '-B', XDELTA_SOURCE_WINDOW, '-s', p.source, p.input, p.output],
    };
  }
  return {
    command: 'zstd',
    args: ['-d', '-q', '-f', '--long=31', `--patch-from=${p.source}`, p.input, '-o', p.output],
  };
}

export function isDeltaTool(value: unknown): value is DeltaTool {
  return typeof value === 'string' && (DELTA_TOOLS as readonly string[]).includes(value);
}

/** What a delta's signature covers: the tool, the delta's bytes and the two images it joins. */
export interface DeltaManifest {
  tool: DeltaTool;
  size: number;
  sha256: string;
  source_sha256: string;
  target_sha256: string;
}

const KEYS = ['tool', 'size', 'sha256', 'source_sha256', 'target_sha256'] as const;
const SHA256 = /^[0-9a-f]{64}$/;

/** The exact text signed: fixed key order, no whitespace, lowercase hashes. */
export function canonicalDeltaManifest(m: DeltaManifest): string {
  const checked = checkDeltaManifest(m);
  return JSON.stringify(Object.fromEntries(KEYS.map((k) => [k, checked[k]])));
}

/** Parses delta manifest text; throws VALIDATION naming the bad field. */
export function parseDeltaManifest(text: string): DeltaManifest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new FleetError('VALIDATION', 'delta manifest is not JSON', undefined, { cause: e });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new FleetError('VALIDATION', 'delta manifest must be a JSON object');
  }
  return checkDeltaManifest(parsed as Record<string, unknown>);
}

function checkDeltaManifest(m: Record<string, unknown> | DeltaManifest): DeltaManifest {
  const r = m as Record<string, unknown>;
  const bad = (field: string, why: string) => new FleetError('VALIDATION', `delta manifest ${field}: ${why}`);
  for (const key of Object.keys(r))
    if (!(KEYS as readonly string[]).includes(key)) throw bad(key, 'unknown field');
  if (!isDeltaTool(r.tool)) throw bad('tool', `must be one of ${DELTA_TOOLS.join('|')}`);
  if (typeof r.size !== 'number' || !Number.isSafeInteger(r.size) || r.size <= 0)
    throw bad('size', 'must be an integer > 0');
  for (const k of ['sha256', 'source_sha256', 'target_sha256'] as const) {
    if (typeof r[k] !== 'string' || !SHA256.test(r[k] as string))
      throw bad(k, 'must be 64 lowercase hex characters');
  }
  return {
    tool: r.tool,
    size: r.size,
    sha256: r.sha256 as string,
    source_sha256: r.source_sha256 as string,
    target_sha256: r.target_sha256 as string,
  };
}

/** A release as far as planning deltas needs it. */
export interface DeltaRelease {
  id: string;
  name: string;
  version: string;
  sha256: string;
}

/**
 * The releases a delta to `target` should start from: the releases of the same name whose versions the
 * rollout's devices run, other than the target's own image, without one already built with this tool.
 */
export function deltaSources(
  target: DeltaRelease,
  versionsInUse: readonly string[],
  releasesOfName: readonly DeltaRelease[],
  builtFrom: ReadonlySet<string>,
): DeltaRelease[] {
  const wanted = new Set(versionsInUse);
  return releasesOfName.filter(
    (r) =>
      r.name === target.name &&
      wanted.has(r.version) &&
      r.id !== target.id &&
      r.sha256 !== target.sha256 &&
      !builtFrom.has(r.id),
  );
}
