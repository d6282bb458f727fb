/**
 * Uptane's director, light (docs/signing.md, "The director"): a second TUF repository with its own root, in
 * `<data>/director/`:
 *
 *   root/N.root.json   the director's chain of roots, signed offline by its own root keys
 *   keys/ROLE.key      the director's online targets, snapshot and timestamp keys (mode 0600)
 *
 * Its targets, snapshot and timestamp are per device and live in the store (they name what that device must
 * install now): signed when the device asks for its timestamp and something is due, served to that device
 * only. An agent provisioned with the director's root installs a release only when the image repository and
 * the director both sign it, so a server whose online keys are stolen can at most stall updates when the image
 * repository's targets need an offline key.
 */
import { createPublicKey } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Key, Metadata, Root } from '@tufjs/models';
import type { Clock } from '../../core/clock.js';
import { FleetError } from '../../core/errors.js';
import type { DirectorMetadata, DirectorStore } from '../../store/director-store.js';
import { readTufSigner, tufKey, writeNewTufKey } from '../tuf/tuf-keys.js';
import type { Lifetimes } from '../tuf/tuf-plan.js';
import { checkRootSuccession, ONLINE_ROLES, type OnlineRole, parseRoot } from '../tuf/tuf-root.js';
import {
  DIRECTOR_LIFETIMES,
  type DirectorSigners,
  directorTargets,
  signDirectorMetadata,
} from './director-metadata.js';

export const DIRECTOR_DIR = 'director';
const ROOT_DIR = 'root';
const KEYS_DIR = 'keys';
const NEXT_KEY = '.next.key';

/** What a device may ask for: `N.root.json`, `timestamp.json`, `N.snapshot.json`, `N.targets.json`. */
const METADATA_FILE = /^(?:([1-9]\d{0,8})\.(root|snapshot|targets)|timestamp)\.json$/;

/** Signing races between replicas end after one re-read; a few rounds are plenty. */
const SAVE_ATTEMPTS = 4;

export class DirectorRepository {
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly dir: string,
    private readonly clock: Clock,
    private readonly store: DirectorStore,
    private readonly lifetimes: Lifetimes,
    private root: Metadata<Root>,
    private readonly signers: DirectorSigners,
  ) {}

  /** The director in `<dataDir>/director`, or undefined when no director root is installed there. */
  static async open(
    dataDir: string,
    clock: Clock,
    store: DirectorStore,
    lifetimes: Lifetimes = DIRECTOR_LIFETIMES,
  ): Promise<DirectorRepository | undefined> {
    const dir = join(dataDir, DIRECTOR_DIR);
    if (!existsSync(join(dir, ROOT_DIR, '1.root.json'))) return undefined;
    const root = await latestRoot(join(dir, ROOT_DIR));
    const signers = {} as DirectorSigners;
    for (const role of ONLINE_ROLES) signers[role] = await readTufSigner(join(dir, KEYS_DIR, `${role}.key`));
    checkOnlineKeys(root, signers);
    return new DirectorRepository(dir, clock, store, lifetimes, root, signers);
  }

  get rootVersion(): number {
    return this.root.signed.version;
  }

  get rootExpiresMs(): number {
    return Date.parse(this.root.signed.expires);
  }

  /** The key id each online role of the director signs with now. */
  get keyIds(): Record<OnlineRole, string> {
    const out = {} as Record<OnlineRole, string>;
    for (const role of ONLINE_ROLES) out[role] = this.signers[role].keyId;
    return out;
  }

  /** The key ids the trusted director root names for its own role. */
  get rootKeyIds(): string[] {
    return this.root.signed.roles.root?.keyIDs ?? [];
  }

  /**
   * One of the device's metadata files, as signed; undefined for a name that is not one, or a version that is
   * not the device's current one. Asking for the timestamp signs what is due first (a new image for the
   * device, a key change, half a lifetime gone), so snapshot and targets are then read as the timestamp names.
   */
  async metadataFile(deviceId: string, name: string): Promise<Buffer | undefined> {
    const m = METADATA_FILE.exec(name);
    if (!m) return undefined;
    if (m[2] === 'root') return this.rootFile(Number(m[1]));
    if (m[2] === undefined) return Buffer.from((await this.current(deviceId)).timestamp);
    const stored = await this.store.get(deviceId);
    const version = Number(m[1]);
    if (m[2] === 'snapshot' && stored?.snapshotVersion === version) return Buffer.from(stored.snapshot);
    if (m[2] === 'targets' && stored?.targetsVersion === version) return Buffer.from(stored.targets);
    return undefined;
  }

  /** Version N of the director's root, as its holders signed it; undefined when there is none. */
  async rootFile(version: number): Promise<Buffer | undefined> {
    try {
      return await readFile(join(this.dir, ROOT_DIR, `${version}.root.json`));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  /** The device's metadata, re-signed first when due. */
  current(deviceId: string): Promise<DirectorMetadata> {
    // One signer at a time in this process; replicas are kept apart by the store's compare-and-set.
    const run = this.queue.then(() => this.signDue(deviceId));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async signDue(deviceId: string): Promise<DirectorMetadata> {
    const wanted = directorTargets(deviceId, await this.store.imagesFor(deviceId));
    for (let attempt = 1; ; attempt++) {
      const stored = await this.store.get(deviceId);
      const next = signDirectorMetadata({
        deviceId,
        stored,
        wanted,
        signers: this.signers,
        lifetimes: this.lifetimes,
        now: this.clock.now(),
      });
      if (!next) return stored!;
      if (await this.store.save(next, stored?.timestampVersion)) return next;
      if (attempt >= SAVE_ATTEMPTS) {
        throw new FleetError(
          'CONFLICT',
          `the director's metadata for ${deviceId} changed meanwhile: ask again`,
        );
      }
    }
  }

  /**
   * Installs the director's next root after checking it as a device will (version + 1, thresholds of the old
   * and of its own root keys, not expired) and that this server holds the online keys it names: its current
   * ones, or the new ones `prepareRotation` made, which sign from then on.
   */
  installRoot(text: string): Promise<number> {
    const run = this.queue.then(async () => {
      const next = parseRoot(text, 'the body');
      checkRootSuccession(this.root, next);
      if (next.signed.isExpired(new Date(this.clock.now()))) {
        throw new FleetError(
          'VALIDATION',
          `director root version ${next.signed.version} has expired already`,
        );
      }
      const keysDir = join(this.dir, KEYS_DIR);
      const signers = { ...this.signers };
      const rotated: OnlineRole[] = [];
      for (const role of ONLINE_ROLES) {
        if (next.signed.roles[role]?.keyIDs.includes(signers[role].keyId)) continue;
        const pending = join(keysDir, `${role}${NEXT_KEY}`);
        if (!existsSync(pending)) continue;
        signers[role] = await readTufSigner(pending);
        rotated.push(role);
      }
      checkOnlineKeys(next, signers);
      const file = join(this.dir, ROOT_DIR, `${next.signed.version}.root.json`);
      await writeFile(`${file}.tmp`, text, { mode: 0o644 });
      await rename(`${file}.tmp`, file);
      for (const role of rotated)
        await rename(join(keysDir, `${role}${NEXT_KEY}`), join(keysDir, `${role}.key`));
      Object.assign(this.signers, signers);
      this.root = next;
      return next.signed.version;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** The director's new key for an online role, made here, for its next root to name. */
  prepareRotation(role: OnlineRole): Promise<Key> {
    const run = this.queue.then(async () => {
      const file = join(this.dir, KEYS_DIR, `${role}${NEXT_KEY}`);
      if (existsSync(file)) return tufKey(createPublicKey(await readFile(file)));
      return writeNewTufKey(file);
    });
    this.queue = run.catch(() => undefined);
    return run;
  }
}

function checkOnlineKeys(root: Metadata<Root>, signers: DirectorSigners): void {
  for (const role of ONLINE_ROLES) {
    if (!root.signed.roles[role]?.keyIDs.includes(signers[role].keyId)) {
      throw new FleetError(
        'VALIDATION',
        `director root version ${root.signed.version} does not name this server's director ${role} key ` +
          `(${signers[role].keyId.slice(0, 16)}…): put the ${role} key made with that root in ${DIRECTOR_DIR}/${KEYS_DIR}/${role}.key`,
      );
    }
  }
}

async function latestRoot(folder: string): Promise<Metadata<Root>> {
  const versions = (await readdir(folder))
    .map((f) => /^(\d+)\.root\.json$/.exec(f)?.[1])
    .filter((v): v is string => v !== undefined)
    .map(Number)
    .sort((a, b) => b - a);
  const latest = versions[0] ?? 1;
  return parseRoot(
    await readFile(join(folder, `${latest}.root.json`), 'utf8'),
    `director root version ${latest}`,
  );
}
