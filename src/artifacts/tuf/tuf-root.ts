/**
 * The offline root ceremony: make the root keys (k of n sign), the online keys of the other three roles, and
 * `1.root.json`; later versions of root for a rotation, signed by a threshold of the old and of the new root
 * keys. Files only, no server: this runs on the operator's offline machine.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Key, Metadata, MetadataKind, Root } from '@tufjs/models';
import { FleetError } from '../../core/errors.js';
import { readTufSigner, writeNewTufKey } from './tuf-keys.js';
import { DAY_MS, tufExpiry } from './tuf-time.js';

/** Roles the server signs online: snapshot and timestamp always; targets unless CI signs it offline. */
export const ONLINE_ROLES = ['targets', 'snapshot', 'timestamp'] as const;
export type OnlineRole = (typeof ONLINE_ROLES)[number];

export const ROOT_KEYS_DIR = 'root-keys';
export const ONLINE_KEYS_DIR = 'online';
export const DEFAULT_ROOT_EXPIRY_DAYS = 365;

export interface RootInit {
  out: string;
  threshold: number;
  keys: number;
  now: number;
  expiresDays?: number;
}

export interface RootInitResult {
  rootFile: string;
  rootKeyFiles: string[];
  onlineKeyFiles: Record<OnlineRole, string>;
  root: Metadata<Root>;
}

export async function initRoot(options: RootInit): Promise<RootInitResult> {
  checkThreshold(options.threshold, options.keys);
  await mkdir(join(options.out, ROOT_KEYS_DIR), { recursive: true, mode: 0o700 });
  await mkdir(join(options.out, ONLINE_KEYS_DIR), { recursive: true, mode: 0o700 });
  const rootKeyFiles: string[] = [];
  const rootKeys: Key[] = [];
  for (let i = 1; i <= options.keys; i++) {
    const file = join(options.out, ROOT_KEYS_DIR, `root-${i}.key`);
    rootKeys.push(await writeNewTufKey(file));
    rootKeyFiles.push(file);
  }
  const onlineKeyFiles = {} as Record<OnlineRole, string>;
  const onlineKeys = {} as Record<OnlineRole, Key>;
  for (const role of ONLINE_ROLES) {
    onlineKeyFiles[role] = join(options.out, ONLINE_KEYS_DIR, `${role}.key`);
    onlineKeys[role] = await writeNewTufKey(onlineKeyFiles[role]);
  }
  const roles: Record<string, Key[]> = { root: rootKeys };
  for (const role of ONLINE_ROLES) roles[role] = [onlineKeys[role]];
  const root = new Metadata(
    rootOf({
      version: 1,
      expires: tufExpiry(options.now + (options.expiresDays ?? DEFAULT_ROOT_EXPIRY_DAYS) * DAY_MS),
      roles,
      thresholds: { root: options.threshold },
    }),
  );
  for (const file of rootKeyFiles) root.sign((await readTufSigner(file)).sign, true);
  const rootFile = join(options.out, '1.root.json');
  await writeFile(rootFile, JSON.stringify(root.toJSON(), null, 2), { flag: 'wx' });
  return { rootFile, rootKeyFiles, onlineKeyFiles, root };
}

export interface RootChange {
  now: number;
  expiresDays?: number;
  /** The new set of root keys (their public halves) and how many must sign; unchanged when absent. */
  rootKeys?: Key[];
  threshold?: number;
  /** A new key for an online role, replacing its current ones (a rotation or a revocation). */
  roleKeys?: Partial<Record<OnlineRole, Key[]>>;
  /**
   * Offline targets keys (CI's) that must sign targets besides the server's key: the targets role then needs
   * all of its keys, so a server alone cannot sign a release devices accept.
   */
  offlineTargetsKeys?: Key[];
}

/** The next version of root, unsigned: its signers then add their signatures with `signRoot`. */
export function nextRoot(current: Metadata<Root>, change: RootChange): Metadata<Root> {
  const roles: Record<string, Key[]> = {};
  const thresholds: Record<string, number> = {};
  for (const [name, role] of Object.entries(current.signed.roles)) {
    roles[name] = role.keyIDs.flatMap((id) => current.signed.keys[id] ?? []);
    thresholds[name] = role.threshold;
  }
  if (change.rootKeys) roles.root = change.rootKeys;
  if (change.threshold !== undefined) thresholds.root = change.threshold;
  checkThreshold(thresholds.root ?? 1, roles.root?.length ?? 0);
  for (const role of ONLINE_ROLES) {
    const keys = change.roleKeys?.[role];
    if (keys) roles[role] = keys;
  }
  if (change.offlineTargetsKeys?.length) {
    roles.targets = [...(roles.targets ?? []), ...change.offlineTargetsKeys];
    thresholds.targets = roles.targets.length;
  }
  // Replacing a role's keys must not leave a threshold no set of keys can meet (e.g. CI's targets key dropped).
  for (const role of ONLINE_ROLES) {
    const need = thresholds[role] ?? 1;
    if (need > (roles[role]?.length ?? 0)) {
      throw new FleetError(
        'VALIDATION',
        `the ${role} role would need ${need} signatures from ${roles[role]?.length ?? 0} key(s): name its other keys too`,
      );
    }
  }
  return new Metadata(
    rootOf({
      version: current.signed.version + 1,
      expires: tufExpiry(change.now + (change.expiresDays ?? DEFAULT_ROOT_EXPIRY_DAYS) * DAY_MS),
      roles,
      thresholds,
    }),
  );
}

function rootOf(spec: {
  version: number;
  expires: string;
  roles: Record<string, Key[]>;
  thresholds: Record<string, number>;
}): Root {
  const keys: Record<string, unknown> = {};
  const roles: Record<string, unknown> = {};
  for (const [name, roleKeys] of Object.entries(spec.roles)) {
    for (const key of roleKeys) keys[key.keyID] = key.toJSON();
    roles[name] = { keyids: roleKeys.map((k) => k.keyID), threshold: spec.thresholds[name] ?? 1 };
  }
  return Root.fromJSON({
    _type: 'root',
    spec_version: '1.0.31',
    version: spec.version,
    expires: spec.expires,
    consistent_snapshot: true,
    keys,
    roles,
  } as Parameters<typeof Root.fromJSON>[0]);
}

/**
 * Adds one signature per key file (one signer at a time in a ceremony, or all at once). A rotation is signed by
 * old and new root keys alike, so any key may sign; `checkRootSuccession` says whether the thresholds are met.
 */
export async function signRoot(root: Metadata<Root>, keyFiles: string[]): Promise<void> {
  for (const file of keyFiles) root.sign((await readTufSigner(file)).sign, true);
}

/**
 * Whether `next` may follow `trusted` in the chain of roots, as a client checks it: version + 1, signed by a
 * threshold of the trusted root's keys and of its own. The message says what is missing.
 */
export function checkRootSuccession(trusted: Metadata<Root>, next: Metadata<Root>): void {
  if (next.signed.version !== trusted.signed.version + 1) {
    throw new FleetError(
      'VALIDATION',
      `root version ${next.signed.version} cannot follow version ${trusted.signed.version}: it must be ${trusted.signed.version + 1}`,
    );
  }
  for (const [who, by] of [
    ['the current root', trusted],
    ['itself', next],
  ] as const) {
    try {
      by.verifyDelegate('root', next);
    } catch (e) {
      throw new FleetError(
        'VALIDATION',
        `root version ${next.signed.version} is not signed by a threshold of ${who}'s root keys (${(e as Error).message})`,
        undefined,
        { cause: e },
      );
    }
  }
}

/**
 * A root sent as a JSON body, as text to parse and keep. A body nested deeper than JSON.stringify can walk (the
 * call stack runs out) is refused like any other body that is not a root.
 */
export function rootBodyText(body: unknown): string {
  try {
    return JSON.stringify(body);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new FleetError('VALIDATION', 'the body is not TUF root metadata (nested too deeply)');
  }
}

export function parseRoot(text: string, what: string): Metadata<Root> {
  try {
    const md = Metadata.fromJSON(MetadataKind.Root, JSON.parse(text));
    return md;
  } catch (e) {
    throw new FleetError(
      'VALIDATION',
      `${what} is not TUF root metadata (${(e as Error).message})`,
      undefined,
      {
        cause: e,
      },
    );
  }
}

export async function readRootFile(path: string): Promise<Metadata<Root>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new FleetError(
      'VALIDATION',
      `cannot read ${path} (${(e as NodeJS.ErrnoException).code})`,
      undefined,
      {
        cause: e,
      },
    );
  }
  return parseRoot(text, path);
}

function checkThreshold(threshold: number, keys: number): void {
  if (!Number.isInteger(keys) || keys < 1 || keys > 20) {
    throw new FleetError('VALIDATION', `--keys must be a whole number from 1 to 20 (got ${keys})`);
  }
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > keys) {
    throw new FleetError(
      'VALIDATION',
      `--threshold must be from 1 to the number of keys, ${keys} (got ${threshold})`,
    );
  }
}
