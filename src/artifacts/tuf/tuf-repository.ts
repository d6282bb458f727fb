/**
 * A FleetD's TUF repository (specification 1.0, consistent snapshots) in `<data>/tuf/`:
 *
 *   root/N.root.json        the chain of roots, signed offline (`fleetd keys root init|sign`)
 *   keys/ROLE.key           the online keys of targets, snapshot and timestamp (mode 0600)
 *   metadata/               timestamp.json, N.snapshot.json, N.targets.json, signed here; N.NAME.json, the
 *                           delegated roles' metadata, written here and signed offline by their teams
 *   delegations.json        the delegated targets roles (tuf-delegations.ts)
 *
 * Targets are the releases, by `name@version`, with their length and sha256. `publish` re-signs what
 * `planPublication` says is due (a new or deleted release, a key change, half a lifetime gone) in the order a
 * client reads safely: targets, then snapshot, then timestamp, each file written whole (rename).
 */

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type Key,
  Metadata,
  MetadataKind,
  MetaFile,
  Signature,
  Snapshot,
  TargetFile,
  Targets,
  Timestamp,
} from '@tufjs/models';
import type { Clock } from '../../core/clock.js';
import { FleetError } from '../../core/errors.js';
import type { Release } from '../../store/store.js';
import {
  DELEGATED_LIFETIME_MS,
  DelegatedRoles,
  fileVersion,
  type RoleState,
  type RoleVersion,
} from './tuf-delegated-roles.js';
import {
  assignTargets,
  type Delegation,
  delegationsFromFile,
  delegationsJson,
  delegationsToFile,
} from './tuf-delegations.js';
import { type ExpiringRole, warningWindows } from './tuf-expiry.js';
import {
  DEFAULT_LIFETIMES,
  type Lifetimes,
  type PublicationState,
  type Published,
  planPublication,
  type TargetEntry,
} from './tuf-plan.js';
import type { OnlineRole } from './tuf-root.js';
import { tufExpiry } from './tuf-time.js';
import {
  installNextRoot,
  keyIdsOf,
  nextOnlineKey,
  type OnlineSigner,
  openTrustedRoot,
  type RepositoryName,
  ROOT_DIR,
  type TrustedRoot,
} from './tuf-trusted-root.js';

export const TUF_DIR = 'tuf';
const NAME: RepositoryName = { folder: TUF_DIR, label: '' };
const METADATA_DIR = 'metadata';
const DELEGATIONS_FILE = 'delegations.json';

/** The files a client may ask for: `N.root.json`, `timestamp.json`, `N.snapshot.json`, `N.targets.json`. */
const METADATA_FILE = /^(?:([1-9]\d{0,8})\.(root|snapshot|targets)|timestamp)\.json$/;
/** A delegated role's metadata: `N.NAME.json`. */
const DELEGATED_FILE = /^[1-9]\d{0,8}\.[a-z][a-z0-9-]{0,39}\.json$/;

export class TufRepository {
  private queue: Promise<unknown> = Promise.resolve();
  /**
   * A targets file changed (an offline signature added, to the top-level targets or a delegated role's):
   * snapshot and timestamp must follow.
   */
  private targetsFileChanged = false;
  /** The delegated targets roles, in the order clients consult them. */
  private delegations: Delegation[] = [];
  private delegated = new DelegatedRoles('', DELEGATED_LIFETIME_MS, {});
  /** A delegation was added, changed or removed: the top-level targets must be re-signed. */
  private delegationsChanged = false;

  private constructor(
    private readonly dir: string,
    private readonly clock: Clock,
    private readonly lifetimes: Lifetimes,
    /** The root this server trusts and the online keys it signs with (tuf-trusted-root.ts). */
    private trusted: TrustedRoot,
    private state: PublicationState,
  ) {}

  /** The repository in `<dataDir>/tuf`, or undefined when no root has been installed there (TUF is off). */
  static async open(
    dataDir: string,
    clock: Clock,
    lifetimes: Lifetimes = DEFAULT_LIFETIMES,
  ): Promise<TufRepository | undefined> {
    const dir = join(dataDir, TUF_DIR);
    const trusted = await openTrustedRoot(dir, NAME);
    if (!trusted) return undefined;
    await mkdir(join(dir, METADATA_DIR), { recursive: true, mode: 0o700 });
    const repository = new TufRepository(
      dir,
      clock,
      lifetimes,
      trusted,
      await readState(join(dir, METADATA_DIR)),
    );
    await repository.openDelegations();
    return repository;
  }

  /** The stored delegations, their roles' versions, and whether the published targets still name them. */
  private async openDelegations(): Promise<void> {
    const file = join(this.dir, DELEGATIONS_FILE);
    this.delegations = existsSync(file) ? delegationsFromFile(await readFile(file, 'utf8')) : [];
    const metadata = join(this.dir, METADATA_DIR);
    const published = await readPublished(metadata);
    this.delegated = new DelegatedRoles(metadata, DELEGATED_LIFETIME_MS, published.delegatedMeta);
    for (const d of this.delegations) await this.delegated.load(d);
    this.delegationsChanged =
      JSON.stringify(published.delegations ?? null) !==
      JSON.stringify(delegationsJson(this.delegations) ?? null);
  }

  get rootVersion(): number {
    return this.trusted.root.signed.version;
  }

  /** Signs what is due for these releases; true when anything was re-signed. One publication at a time. */
  publish(releases: Release[]): Promise<boolean> {
    const run = this.queue.then(() => this.publishNow(releases));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Installs the next root, signed offline (tuf-trusted-root.ts says what it must be). */
  installRoot(text: string): Promise<number> {
    const run = this.queue.then(async () => {
      this.trusted = await installNextRoot(this.dir, NAME, this.trusted, text, this.clock.now());
      return this.rootVersion;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** The new key of an online role for the next root to name, made here (a rotation, or a revocation). */
  prepareRotation(role: OnlineRole): Promise<Key> {
    const run = this.queue.then(() => nextOnlineKey(this.dir, role));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** The key id each online role is signed with now. */
  get keyIds(): Record<OnlineRole, string> {
    return keyIdsOf(this.trusted.signers);
  }

  /** When the trusted root and the published metadata of each online role expire (ms). */
  expiries(): Record<ExpiringRole, number | undefined> {
    return {
      root: Date.parse(this.trusted.root.signed.expires),
      targets: this.state.targets?.expiresMs,
      snapshot: this.state.snapshot?.expiresMs,
      timestamp: this.state.timestamp?.expiresMs,
    };
  }

  /** Each role's expiry and how long before it to warn (tuf-expiry.ts), for alert rules. */
  expiryWarnings(): Record<string, { expiresMs: number; warnMs: number }> {
    const windows = warningWindows(this.lifetimes);
    const out: Record<string, { expiresMs: number; warnMs: number }> = {};
    for (const [role, expiresMs] of Object.entries(this.expiries())) {
      if (expiresMs !== undefined) out[role] = { expiresMs, warnMs: windows[role as ExpiringRole] };
    }
    // A delegated role's team re-signs it offline; the server writes the version to sign at half its lifetime.
    for (const d of this.delegations) {
      const signed = this.delegated.state(d.name).signed;
      if (signed) out[d.name] = { expiresMs: signed.expiresMs, warnMs: DELEGATED_LIFETIME_MS / 4 };
    }
    return out;
  }

  /**
   * Adds offline signatures (CI's targets key, when the root's targets threshold needs it) to the current
   * targets metadata, then re-signs snapshot and timestamp over the new bytes. Each signature must be by a key
   * the root names for targets and verify over the current version; otherwise nothing is written.
   */
  addTargetsSignatures(version: number, signatures: Array<{ keyid: string; sig: string }>): Promise<number> {
    const run = this.queue.then(async () => {
      const current = this.state.targets?.version;
      if (current !== version) {
        throw new FleetError(
          'CONFLICT',
          `targets version ${version} is not the current one (${current ?? 'none'}): fetch it again and sign that`,
        );
      }
      const file = join(this.dir, METADATA_DIR, `${version}.targets.json`);
      const md = Metadata.fromJSON(MetadataKind.Targets, JSON.parse(await readFile(file, 'utf8')));
      const role = this.trusted.root.signed.roles.targets;
      for (const s of signatures) {
        const key = this.trusted.root.signed.keys[s.keyid];
        if (!key || !role?.keyIDs.includes(s.keyid)) {
          throw new FleetError(
            'VALIDATION',
            `key ${s.keyid.slice(0, 16)}… is not a targets key of root version ${this.rootVersion}`,
          );
        }
        const one = Metadata.fromJSON(MetadataKind.Targets, {
          ...(md.toJSON() as object),
          signatures: [s],
        } as never);
        try {
          key.verifySignature(one);
        } catch (e) {
          throw new FleetError(
            'VALIDATION',
            `the signature of key ${s.keyid.slice(0, 16)}… does not verify over targets version ${version}`,
            undefined,
            { cause: e },
          );
        }
        md.signatures[s.keyid] = new Signature({ keyID: s.keyid, sig: s.sig });
      }
      await writeWhole(file, Buffer.from(JSON.stringify(md.toJSON())));
      this.targetsFileChanged = true;
      return Object.keys(md.signatures).length;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** The repository's folder in the data folder (`<data>/tuf`). */
  get folder(): string {
    return this.dir;
  }

  /** The folders of the public metadata, roots first (what a mirror copies: tuf-mirror.ts). */
  publicFolders(): string[] {
    return [join(this.dir, ROOT_DIR), join(this.dir, METADATA_DIR)];
  }

  /**
   * Adds a delegated targets role, or changes one (its keys, paths, threshold) in place, keeping its order.
   * The caller publishes: the top-level targets are re-signed naming it, and its first version is written
   * unsigned for its team to sign.
   */
  delegate(delegation: Delegation): Promise<void> {
    const run = this.queue.then(async () => {
      const next = [...this.delegations];
      const at = next.findIndex((d) => d.name === delegation.name);
      if (at >= 0) next[at] = delegation;
      else next.push(delegation);
      await writeWhole(join(this.dir, DELEGATIONS_FILE), delegationsToFile(next));
      this.delegations = next;
      await this.delegated.load(delegation);
      this.delegationsChanged = true;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Removes a delegation: its targets go back to the top-level targets, which the server signs alone. */
  undelegate(name: string): Promise<void> {
    const run = this.queue.then(async () => {
      this.delegationOf(name);
      const next = this.delegations.filter((d) => d.name !== name);
      await writeWhole(join(this.dir, DELEGATIONS_FILE), delegationsToFile(next));
      this.delegations = next;
      this.delegated.forget(name);
      this.delegationsChanged = true;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** The delegations and the versions of their roles' metadata. */
  delegationList(): Array<Delegation & RoleState> {
    return this.delegations.map((d) => ({ ...d, ...this.delegated.state(d.name) }));
  }

  /**
   * Adds a team's offline signatures to its role's newest version; once they meet the delegation's threshold,
   * that version is the one snapshot lists (the caller publishes, re-signing snapshot and timestamp).
   */
  addDelegatedSignatures(
    name: string,
    version: number,
    signatures: Array<{ keyid: string; sig: string }>,
  ): Promise<RoleVersion & { threshold: number }> {
    const run = this.queue.then(async () => {
      const d = this.delegationOf(name);
      const updated = await this.delegated.addSignatures(d, version, signatures);
      this.targetsFileChanged = true;
      return { ...updated, threshold: d.threshold };
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private delegationOf(name: string): Delegation {
    const d = this.delegations.find((x) => x.name === name);
    if (!d)
      throw new FleetError('NOT_FOUND', `no delegated targets role ${name} (\`fleetd keys delegations ls\`)`);
    return d;
  }

  /** A metadata file's bytes as signed, or undefined for a name that is not one (or not there). */
  async metadataFile(name: string): Promise<Buffer | undefined> {
    const m = METADATA_FILE.exec(name);
    if (!m && !DELEGATED_FILE.test(name)) return undefined;
    const folder = m?.[2] === 'root' ? ROOT_DIR : METADATA_DIR;
    try {
      return await readFile(join(this.dir, folder, name));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  private async publishNow(releases: Release[]): Promise<boolean> {
    const now = this.clock.now();
    // A delegated role's releases are listed in its own metadata, never in the top-level targets.
    const assigned = assignTargets(targetsOf(releases), this.delegations);
    const wanted = assigned.top;
    const delegatedListingChanged = await this.delegated.prepare(this.delegations, assigned.roles, now);
    const plan = planPublication(this.state, wanted, keyIdsOf(this.trusted.signers), this.lifetimes, now);
    if (this.targetsFileChanged) {
      plan.snapshot = true;
      plan.timestamp = true;
      this.targetsFileChanged = false;
    }
    if (this.delegationsChanged) {
      plan.targets = true;
      this.delegationsChanged = false;
    }
    if (plan.targets || delegatedListingChanged) {
      plan.snapshot = true;
      plan.timestamp = true;
    }
    const expires = (role: OnlineRole) => now + this.lifetimes[role];
    const metadata = join(this.dir, METADATA_DIR);
    let targetsBytes: Buffer | undefined;
    if (plan.targets) {
      const version = (this.state.targets?.version ?? 0) + 1;
      const delegations = delegationsJson(this.delegations);
      const targets = Targets.fromJSON({
        _type: 'targets',
        spec_version: '1.0.31',
        version,
        expires: tufExpiry(expires('targets')),
        targets: {},
        ...(delegations ? { delegations } : {}),
      } as never);
      for (const [path, t] of Object.entries(wanted)) {
        targets.addTarget(
          new TargetFile({
            path,
            length: t.length,
            hashes: { sha256: t.sha256 },
            unrecognizedFields: { custom: t.custom as never },
          }),
        );
      }
      targetsBytes = await this.write(metadata, `${version}.targets.json`, new Metadata(targets), 'targets');
      this.state.targets = { ...published(targets, this.trusted.signers.targets), targets: wanted };
    }
    let snapshotBytes: Buffer | undefined;
    if (plan.snapshot) {
      const targetsVersion = this.state.targets?.version ?? 1;
      targetsBytes ??= await readFile(join(metadata, `${targetsVersion}.targets.json`));
      const version = (this.state.snapshot?.version ?? 0) + 1;
      const snapshot = new Snapshot({
        version,
        specVersion: '1.0.31',
        expires: tufExpiry(expires('snapshot')),
        meta: {
          'targets.json': metaFile(targetsVersion, targetsBytes),
          ...this.delegated.snapshotMeta(this.delegations),
        },
      });
      snapshotBytes = await this.write(
        metadata,
        `${version}.snapshot.json`,
        new Metadata(snapshot),
        'snapshot',
      );
      this.state.snapshot = published(snapshot, this.trusted.signers.snapshot);
    }
    if (plan.timestamp) {
      const snapshotVersion = this.state.snapshot?.version ?? 1;
      snapshotBytes ??= await readFile(join(metadata, `${snapshotVersion}.snapshot.json`));
      const version = (this.state.timestamp?.version ?? 0) + 1;
      const timestamp = new Timestamp({
        version,
        specVersion: '1.0.31',
        expires: tufExpiry(expires('timestamp')),
        snapshotMeta: metaFile(snapshotVersion, snapshotBytes),
      });
      await this.write(metadata, 'timestamp.json', new Metadata(timestamp), 'timestamp');
      this.state.timestamp = published(timestamp, this.trusted.signers.timestamp);
    }
    return plan.timestamp;
  }

  private async write(
    folder: string,
    name: string,
    md: Metadata<Targets | Snapshot | Timestamp>,
    role: OnlineRole,
  ): Promise<Buffer> {
    md.sign(this.trusted.signers[role].sign, false);
    const bytes = Buffer.from(JSON.stringify(md.toJSON()));
    await writeWhole(join(folder, name), bytes);
    return bytes;
  }
}

/** The releases as TUF targets: `name@version`, its length and sha256, what FleetD knows of it as custom. */
export function targetsOf(releases: Release[]): Record<string, TargetEntry> {
  const out: Record<string, TargetEntry> = {};
  for (const r of releases) {
    out[`${r.name}@${r.version}`] = {
      length: r.size,
      sha256: r.sha256,
      custom: { type: r.type, hardware: r.hardware, allow_downgrade: r.allowDowngrade },
    };
  }
  return out;
}

const published = (signed: Targets | Snapshot | Timestamp, signer: OnlineSigner): Published => ({
  version: signed.version,
  expiresMs: Date.parse(signed.expires),
  signedBy: [signer.keyId],
});

const metaFile = (version: number, bytes: Buffer) =>
  new MetaFile({
    version,
    length: bytes.length,
    hashes: { sha256: createHash('sha256').update(bytes).digest('hex') },
  });

/** The published targets' delegations and what the published snapshot lists besides targets.json. */
async function readPublished(
  folder: string,
): Promise<{ delegations: unknown; delegatedMeta: Record<string, MetaFile> }> {
  const files = await readdir(folder);
  const newest = (role: string) =>
    files
      .map((f) => fileVersion(f, role))
      .filter((v): v is number => v !== undefined)
      .sort((a, b) => b - a)[0];
  const t = newest('targets');
  const s = newest('snapshot');
  const read = async (name: string) => JSON.parse(await readFile(join(folder, name), 'utf8'));
  const delegations = t === undefined ? undefined : (await read(`${t}.targets.json`)).signed.delegations;
  const delegatedMeta: Record<string, MetaFile> = {};
  if (s !== undefined) {
    const snapshot = Metadata.fromJSON(MetadataKind.Snapshot, await read(`${s}.snapshot.json`));
    for (const [name, meta] of Object.entries(snapshot.signed.meta)) {
      if (name !== 'targets.json') delegatedMeta[name] = meta;
    }
  }
  return { delegations, delegatedMeta };
}

/** What was published before a restart: the newest targets and snapshot and the timestamp. */
async function readState(folder: string): Promise<PublicationState> {
  const files = await readdir(folder);
  const newest = (role: string) =>
    files
      .map((f) => new RegExp(`^(\\d+)\\.${role}\\.json$`).exec(f)?.[1])
      .filter((v): v is string => v !== undefined)
      .map(Number)
      .sort((a, b) => b - a)[0];
  const read = async (name: string) => JSON.parse(await readFile(join(folder, name), 'utf8'));
  const state: PublicationState = {};
  const info = (md: Metadata<Targets | Snapshot | Timestamp>): Published => ({
    version: md.signed.version,
    expiresMs: Date.parse(md.signed.expires),
    signedBy: Object.keys(md.signatures),
  });
  const t = newest('targets');
  if (t !== undefined) {
    const md = Metadata.fromJSON(MetadataKind.Targets, await read(`${t}.targets.json`));
    const targets: Record<string, TargetEntry> = {};
    for (const [path, f] of Object.entries(md.signed.targets)) {
      targets[path] = { length: f.length, sha256: f.hashes.sha256 ?? '', custom: f.custom };
    }
    state.targets = { ...info(md), targets };
  }
  const s = newest('snapshot');
  if (s !== undefined)
    state.snapshot = info(Metadata.fromJSON(MetadataKind.Snapshot, await read(`${s}.snapshot.json`)));
  if (files.includes('timestamp.json')) {
    state.timestamp = info(Metadata.fromJSON(MetadataKind.Timestamp, await read('timestamp.json')));
  }
  return state;
}

async function writeWhole(path: string, bytes: Buffer | string): Promise<void> {
  const temp = `${path}.tmp`;
  await writeFile(temp, bytes, { mode: 0o644 });
  await rename(temp, path);
}
