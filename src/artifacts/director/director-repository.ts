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
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Key } from '@tufjs/models';
import type { Clock } from '../../core/clock.js';
import { FleetError } from '../../core/errors.js';
import type { DirectorMetadata, DirectorStore } from '../../store/director-store.js';
import type { Lifetimes } from '../tuf/tuf-plan.js';
import type { OnlineRole } from '../tuf/tuf-root.js';
import {
  installNextRoot,
  keyIdsOf,
  nextOnlineKey,
  openTrustedRoot,
  type RepositoryName,
  ROOT_DIR,
  type TrustedRoot,
} from '../tuf/tuf-trusted-root.js';
import { DIRECTOR_LIFETIMES, directorTargets, signDirectorMetadata } from './director-metadata.js';

export const DIRECTOR_DIR = 'director';
const NAME: RepositoryName = { folder: DIRECTOR_DIR, label: 'director ' };

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
    /** The director's trusted root and the online keys it signs with (tuf-trusted-root.ts). */
    private trusted: TrustedRoot,
  ) {}

  /** The director in `<dataDir>/director`, or undefined when no director root is installed there. */
  static async open(
    dataDir: string,
    clock: Clock,
    store: DirectorStore,
    lifetimes: Lifetimes = DIRECTOR_LIFETIMES,
  ): Promise<DirectorRepository | undefined> {
    const dir = join(dataDir, DIRECTOR_DIR);
    const trusted = await openTrustedRoot(dir, NAME);
    if (!trusted) return undefined;
    return new DirectorRepository(dir, clock, store, lifetimes, trusted);
  }

  get rootVersion(): number {
    return this.trusted.root.signed.version;
  }

  get rootExpiresMs(): number {
    return Date.parse(this.trusted.root.signed.expires);
  }

  /** The key id each online role of the director signs with now. */
  get keyIds(): Record<OnlineRole, string> {
    return keyIdsOf(this.trusted.signers);
  }

  /** The key ids the trusted director root names for its own role. */
  get rootKeyIds(): string[] {
    return this.trusted.root.signed.roles.root?.keyIDs ?? [];
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
        signers: this.trusted.signers,
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

  /** Installs the director's next root, signed offline (tuf-trusted-root.ts says what it must be). */
  installRoot(text: string): Promise<number> {
    const run = this.queue.then(async () => {
      this.trusted = await installNextRoot(this.dir, NAME, this.trusted, text, this.clock.now());
      return this.rootVersion;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** The director's new key for an online role, made here, for its next root to name. */
  prepareRotation(role: OnlineRole): Promise<Key> {
    const run = this.queue.then(() => nextOnlineKey(this.dir, role));
    this.queue = run.catch(() => undefined);
    return run;
  }
}
