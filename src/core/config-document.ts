/**
 * Remote configuration (docs/configuration.md): named JSON documents an operator sets for the whole fleet, for the
 * devices of a filter or for one device, and what one device should hold when several apply. Pure: the API checks
 * a document here, the store keeps and resolves, the agent applies through its hook.
 *
 * Merge order, stated once: fleet-wide documents first, then filter documents, then per-device documents (the most
 * specific last, so it wins), each tier in byte order of the names. Each document is applied over the previous
 * result as a JSON merge patch (RFC 7386): objects merge key by key, any other value replaces, `null` removes.
 */
import { createHash } from 'node:crypto';
import { FleetError } from './errors.js';

/** The largest document, in bytes of its canonical JSON. */
export const MAX_CONFIG_BYTES = 64 * 1024;
/** How many documents a fleet may have: each heartbeat batch looks at all of them. */
export const MAX_CONFIG_DOCUMENTS = 100;
const MAX_DEPTH = 32;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export type JsonObject = { [key: string]: JsonValue };
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;

/** Where a document applies: every device, the devices of a filter, or one device. */
export type ConfigTarget =
  | { kind: 'fleet' }
  | { kind: 'filter'; filter: string }
  | { kind: 'device'; deviceId: string };

/** One document as resolution sees it: enough to order and merge it. */
export interface ConfigSource {
  name: string;
  version: number;
  target: ConfigTarget['kind'];
  document: JsonObject;
}

/** What a device should hold: the merged document, its hash, and the version naming its sources (`base@3+east@1`). */
export interface DesiredConfig {
  version: string;
  hash: string;
  document: JsonObject;
}

const bad = (message: string): never => {
  throw new FleetError('VALIDATION', message);
};

export function checkConfigName(name: string): string {
  if (!NAME.test(name)) {
    bad(`config name '${name}': 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit`);
  }
  return name;
}

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

function checkValue(value: unknown, depth: number, path: string): void {
  if (depth > MAX_DEPTH) bad(`document: nested deeper than ${MAX_DEPTH} levels at ${path}`);
  if (typeof value === 'number' && !Number.isFinite(value)) bad(`document: ${path} is not a finite number`);
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) checkValue(v, depth + 1, `${path}[${i}]`);
  } else if (isObject(value))
    for (const [k, v] of Object.entries(value)) checkValue(v, depth + 1, `${path}.${k}`);
}

/** Refuses what no device should be handed: not a JSON object, too deep, too large. */
export function checkConfigDocument(value: unknown): JsonObject {
  if (!isObject(value)) return bad('document: must be a JSON object ({...})');
  checkValue(value, 0, '$');
  const bytes = Buffer.byteLength(canonicalJson(value));
  if (bytes > MAX_CONFIG_BYTES) bad(`document: ${bytes} bytes; at most ${MAX_CONFIG_BYTES}`);
  return value;
}

/** JSON with every object's keys sorted: the same document always has the same bytes, and so the same hash. */
export function canonicalJson(value: JsonValue): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (isObject(value)) {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k]!)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export const configHash = (document: JsonObject): string =>
  createHash('sha256').update(canonicalJson(document)).digest('hex');

/** RFC 7386: `patch` over `target`. */
export function mergePatch(target: JsonValue, patch: JsonValue): JsonValue {
  if (!isObject(patch)) return patch;
  const result: JsonObject = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key] ?? null, value);
  }
  return result;
}

const TIER: Record<ConfigTarget['kind'], number> = { fleet: 0, filter: 1, device: 2 };
const byteOrder = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** The sources in merge order (see the header). */
export function mergeOrder<T extends Pick<ConfigSource, 'name' | 'target'>>(sources: readonly T[]): T[] {
  return [...sources].sort((a, b) => TIER[a.target] - TIER[b.target] || byteOrder(a.name, b.name));
}

/** The version a set of sources makes: their names and versions in merge order. */
export const desiredVersion = (sources: ReadonlyArray<Pick<ConfigSource, 'name' | 'version' | 'target'>>) =>
  mergeOrder(sources)
    .map((s) => `${s.name}@${s.version}`)
    .join('+');

/** What a device should hold; undefined when no document applies to it (nothing desired, so no drift). */
export function desiredConfig(sources: readonly ConfigSource[]): DesiredConfig | undefined {
  if (sources.length === 0) return undefined;
  let merged: JsonValue = {};
  for (const s of mergeOrder(sources)) merged = mergePatch(merged, s.document);
  const document = merged as JsonObject;
  return { version: desiredVersion(sources), hash: configHash(document), document };
}

/** Drift: something is desired and the device has not reported applying exactly it. */
export const configDrift = (desiredHash: string | null, appliedHash: string | null): boolean =>
  desiredHash !== null && desiredHash !== appliedHash;

/** A device's report of applying a configuration. */
export const CONFIG_RESULTS = ['applied', 'failed'] as const;
export type ConfigResult = (typeof CONFIG_RESULTS)[number];
/** What a report keeps of the hook's output (its tail). */
export const MAX_CONFIG_OUTPUT = 8 * 1024;
