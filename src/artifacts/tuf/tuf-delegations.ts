/**
 * Delegated targets roles (docs/signing.md, "Delegated targets"): the top-level targets hand the releases whose
 * `name@version` matches a role's paths to that role, whose metadata only the role's own keys (a team's, kept
 * offline) can sign. Pure: what a delegation may be, how it reads in the top-level targets and which role lists
 * which target. Matching is @tufjs/models' own (`rolesForTarget`), the code devices run, so the server lists a
 * target exactly where a client will look for it.
 */
import { createPublicKey } from 'node:crypto';
import { Key, Targets } from '@tufjs/models';
import { FleetError } from '../../core/errors.js';
import { tufKey } from './tuf-keys.js';
import type { TargetEntry } from './tuf-plan.js';

export interface Delegation {
  name: string;
  /** The role's keys by id, in TUF's form. */
  keys: Record<string, Key>;
  threshold: number;
  /** Patterns over `name@version` (`*` and `?`), as TUF's `paths`. */
  paths: string[];
  /** A client that finds no target in this role looks no further (TUF's terminating delegation). */
  terminating: boolean;
}

/** Starts with a letter: a role name that looks like a number would reorder the delegations in JSON. */
export const DELEGATION_NAME = /^[a-z][a-z0-9-]{0,39}$/;
/** Release names' characters and the wildcards; no `/`, braces or brackets, which TUF clients read apart. */
export const DELEGATION_PATH = /^[A-Za-z0-9._@*?+-]{1,128}$/;
const RESERVED = ['root', 'targets', 'snapshot', 'timestamp'];
export const MAX_DELEGATION_KEYS = 20;
export const MAX_DELEGATION_PATHS = 20;

/** A delegation from what the operator gave: public keys as PEM. Throws VALIDATION with what is wrong. */
export function parseDelegation(input: {
  name: string;
  paths: string[];
  keys: string[];
  threshold: number;
  terminating: boolean;
}): Delegation {
  if (!DELEGATION_NAME.test(input.name) || RESERVED.includes(input.name)) {
    throw new FleetError(
      'VALIDATION',
      `"${input.name}" is not a delegated role name: a lowercase letter, then letters, digits or -, at most 40, and not ${RESERVED.join(', ')}`,
    );
  }
  if (input.paths.length < 1 || input.paths.length > MAX_DELEGATION_PATHS) {
    throw new FleetError('VALIDATION', `a delegation needs 1 to ${MAX_DELEGATION_PATHS} paths`);
  }
  for (const p of input.paths) {
    if (!DELEGATION_PATH.test(p)) {
      throw new FleetError(
        'VALIDATION',
        `paths: "${p}" is not a pattern over name@version (letters, digits, . _ @ + - and the wildcards * ?)`,
      );
    }
  }
  const keys: Record<string, Key> = {};
  input.keys.forEach((pem, i) => {
    let key: Key;
    try {
      key = tufKey(createPublicKey(pem));
    } catch (e) {
      throw new FleetError(
        'VALIDATION',
        `keys[${i}] is not an Ed25519 public key in PEM (${(e as Error).message})`,
        undefined,
        { cause: e },
      );
    }
    keys[key.keyID] = key;
  });
  const count = Object.keys(keys).length;
  if (count < 1 || count > MAX_DELEGATION_KEYS) {
    throw new FleetError('VALIDATION', `a delegation needs 1 to ${MAX_DELEGATION_KEYS} different keys`);
  }
  if (!Number.isInteger(input.threshold) || input.threshold < 1 || input.threshold > count) {
    throw new FleetError(
      'VALIDATION',
      `threshold must be from 1 to the number of keys, ${count} (got ${input.threshold})`,
    );
  }
  return {
    name: input.name,
    keys,
    threshold: input.threshold,
    paths: [...new Set(input.paths)],
    terminating: input.terminating,
  };
}

/** The `delegations` field of the top-level targets, in TUF's JSON form (undefined when there are none). */
export function delegationsJson(delegations: Delegation[]): Record<string, unknown> | undefined {
  if (delegations.length === 0) return undefined;
  const keys: Record<string, unknown> = {};
  for (const d of delegations) for (const [id, key] of Object.entries(d.keys)) keys[id] = key.toJSON();
  return {
    keys,
    roles: delegations.map((d) => ({
      name: d.name,
      keyids: Object.keys(d.keys),
      threshold: d.threshold,
      paths: d.paths,
      terminating: d.terminating,
    })),
  };
}

/**
 * Which role lists each target: the first delegation whose paths match it, as a client walks them in order;
 * the top-level targets keep only what no delegation matches, so they never vouch for a team's release.
 */
export function assignTargets(
  wanted: Record<string, TargetEntry>,
  delegations: Delegation[],
): { top: Record<string, TargetEntry>; roles: Record<string, Record<string, TargetEntry>> } {
  const roles: Record<string, Record<string, TargetEntry>> = {};
  for (const d of delegations) roles[d.name] = {};
  const json = delegationsJson(delegations);
  if (!json) return { top: { ...wanted }, roles };
  const matcher = Targets.fromJSON({
    _type: 'targets',
    spec_version: '1.0.31',
    version: 1,
    expires: '2000-01-01T00:00:00Z',
    targets: {},
    delegations: json,
  } as never);
  const top: Record<string, TargetEntry> = {};
  for (const [path, entry] of Object.entries(wanted)) {
    const first = matcher.delegations?.rolesForTarget(path).next();
    const role = first && !first.done ? roles[first.value.role] : undefined;
    if (role) role[path] = entry;
    else top[path] = entry;
  }
  return { top, roles };
}

/** The delegations as stored (`tuf/delegations.json`), keys in TUF's JSON form. */
export function delegationsToFile(delegations: Delegation[]): string {
  return JSON.stringify(
    delegations.map((d) => ({
      name: d.name,
      keys: Object.fromEntries(Object.entries(d.keys).map(([id, k]) => [id, k.toJSON()])),
      threshold: d.threshold,
      paths: d.paths,
      terminating: d.terminating,
    })),
    null,
    2,
  );
}

export function delegationsFromFile(text: string): Delegation[] {
  const rows = JSON.parse(text) as Array<Omit<Delegation, 'keys'> & { keys: Record<string, unknown> }>;
  return rows.map((r) => ({
    ...r,
    keys: Object.fromEntries(Object.entries(r.keys).map(([id, k]) => [id, Key.fromJSON(id, k as never)])),
  }));
}
