/**
 * The root a server-side TUF repository trusts and the online keys it signs with, in its folder (the image
 * repository's `<data>/tuf/`, the director's `<data>/director/`):
 *
 *   root/N.root.json      the chain of roots, signed offline
 *   keys/ROLE.key         the online keys of targets, snapshot and timestamp (mode 0600)
 *   keys/ROLE.next.key    a role's new key, made for a rotation, until a root naming it is installed
 *
 * Both repositories open, install the next root and prepare a rotation the same way; they differ only in how
 * their messages name them.
 */
import { createPublicKey } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Key, Metadata, Root } from '@tufjs/models';
import { FleetError } from '../../core/errors.js';
import { readTufSigner, type Signer, tufKey, writeNewTufKey } from './tuf-keys.js';
import { checkRootSuccession, ONLINE_ROLES, type OnlineRole, parseRoot } from './tuf-root.js';

export const ROOT_DIR = 'root';
export const KEYS_DIR = 'keys';
const NEXT_KEY = '.next.key';

export type OnlineSigner = { keyId: string; sign: Signer };
export type OnlineSigners = Record<OnlineRole, OnlineSigner>;

export interface TrustedRoot {
  root: Metadata<Root>;
  signers: OnlineSigners;
}

/** How messages name a repository: `{ folder: 'tuf', label: '' }`, `{ folder: 'director', label: 'director ' }`. */
export interface RepositoryName {
  /** Its folder in the data folder, where an operator puts a missing key. */
  folder: string;
  /** Put before "root version N" and before a role's key: '' or 'director '. */
  label: string;
}

/** The newest root in `dir` and its online keys, checked to match; undefined when no root is installed. */
export async function openTrustedRoot(dir: string, name: RepositoryName): Promise<TrustedRoot | undefined> {
  if (!existsSync(join(dir, ROOT_DIR, '1.root.json'))) return undefined;
  const root = await latestRoot(join(dir, ROOT_DIR), name);
  const signers = {} as OnlineSigners;
  for (const role of ONLINE_ROLES) signers[role] = await readTufSigner(join(dir, KEYS_DIR, `${role}.key`));
  checkOnlineKeys(root, signers, name);
  return { root, signers };
}

/**
 * Installs the next root after checking it as a client would (version + 1, thresholds of the old and of its own
 * root keys, not expired) and that the server holds the online keys it names: its current ones, or the new ones
 * `nextOnlineKey` made. A role whose key the root replaces signs with the new key from then on and the old key
 * file is gone, so a revoked key signs nothing more. Returns the new trust; the caller adopts it.
 */
export async function installNextRoot(
  dir: string,
  name: RepositoryName,
  trusted: TrustedRoot,
  text: string,
  now: number,
): Promise<TrustedRoot> {
  const next = parseRoot(text, 'the body');
  checkRootSuccession(trusted.root, next);
  if (next.signed.isExpired(new Date(now))) {
    throw new FleetError(
      'VALIDATION',
      `${name.label}root version ${next.signed.version} has expired already`,
    );
  }
  const keysDir = join(dir, KEYS_DIR);
  const signers = { ...trusted.signers };
  const rotated: OnlineRole[] = [];
  for (const role of ONLINE_ROLES) {
    if (next.signed.roles[role]?.keyIDs.includes(signers[role].keyId)) continue;
    const pending = join(keysDir, `${role}${NEXT_KEY}`);
    if (!existsSync(pending)) continue;
    signers[role] = await readTufSigner(pending);
    rotated.push(role);
  }
  checkOnlineKeys(next, signers, name);
  const file = join(dir, ROOT_DIR, `${next.signed.version}.root.json`);
  await writeFile(`${file}.tmp`, text, { mode: 0o644 });
  await rename(`${file}.tmp`, file);
  for (const role of rotated) await rename(join(keysDir, `${role}${NEXT_KEY}`), join(keysDir, `${role}.key`));
  return { root: next, signers };
}

/**
 * The new key of an online role for the next root to name (rotation, or revocation of a stolen key): made
 * here, so its private half never leaves the server, and the same one until a root naming it is installed.
 */
export async function nextOnlineKey(dir: string, role: OnlineRole): Promise<Key> {
  const file = join(dir, KEYS_DIR, `${role}${NEXT_KEY}`);
  if (existsSync(file)) return tufKey(createPublicKey(await readFile(file)));
  return writeNewTufKey(file);
}

/** The key id each online role is signed with. */
export function keyIdsOf(signers: OnlineSigners): Record<OnlineRole, string> {
  const out = {} as Record<OnlineRole, string>;
  for (const role of ONLINE_ROLES) out[role] = signers[role].keyId;
  return out;
}

function checkOnlineKeys(root: Metadata<Root>, signers: OnlineSigners, name: RepositoryName): void {
  for (const role of ONLINE_ROLES) {
    if (!root.signed.roles[role]?.keyIDs.includes(signers[role].keyId)) {
      throw new FleetError(
        'VALIDATION',
        `${name.label}root version ${root.signed.version} does not name this server's ${name.label}${role} key ` +
          `(${signers[role].keyId.slice(0, 16)}…): put the ${role} key made with that root in ${name.folder}/${KEYS_DIR}/${role}.key`,
      );
    }
  }
}

async function latestRoot(folder: string, name: RepositoryName): Promise<Metadata<Root>> {
  const versions = (await readdir(folder))
    .map((f) => /^(\d+)\.root\.json$/.exec(f)?.[1])
    .filter((v): v is string => v !== undefined)
    .map(Number)
    .sort((a, b) => b - a);
  const latest = versions[0] ?? 1;
  return parseRoot(
    await readFile(join(folder, `${latest}.root.json`), 'utf8'),
    `${name.label}root version ${latest}`,
  );
}
