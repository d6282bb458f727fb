/**
 * The metadata of delegated targets roles, `N.NAME.json` beside the top-level files. The server writes each new
 * version unsigned (a new release of the role's paths, or half its lifetime gone); the role's team signs it
 * offline (`fleetd keys sign-delegated`) and the server keeps the signatures that verify against the
 * delegation's keys. Snapshot lists a role's newest version that meets its threshold (or, before the first one
 * does, its newest, which clients then refuse), so an unsigned release never hides the team's signed ones.
 * Snapshot never drops a role it once listed: TUF clients refuse a snapshot that does.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Metadata, MetadataKind, MetaFile, Signature, TargetFile, Targets } from '@tufjs/models';
import { FleetError } from '../../core/errors.js';
import type { Delegation } from './tuf-delegations.js';
import type { TargetEntry } from './tuf-plan.js';
import { tufExpiry } from './tuf-time.js';

/** As long as the top-level targets: the team re-signs at half of it, warned at a quarter. */
export const DELEGATED_LIFETIME_MS = 90 * 86_400_000;

export interface RoleVersion {
  version: number;
  expiresMs: number;
  targets: Record<string, TargetEntry>;
  bytes: Buffer;
  /** Signatures that verify against the delegation's keys. */
  valid: number;
}

export interface RoleState {
  /** The newest version that meets the threshold. */
  signed?: RoleVersion | undefined;
  /** The newest version written, signed or not. */
  newest?: RoleVersion | undefined;
}

export class DelegatedRoles {
  private readonly states = new Map<string, RoleState>();

  constructor(
    private readonly folder: string,
    private readonly lifetimeMs: number,
    /** What the last snapshot listed besides targets.json, kept for roles delegated no more. */
    private readonly listed: Record<string, MetaFile>,
  ) {}

  /** Reads each delegation's versions from disk, counting only signatures by its current keys. */
  async load(delegation: Delegation): Promise<void> {
    const versions = (await readdir(this.folder))
      .map((f) => fileVersion(f, delegation.name))
      .filter((v): v is number => v !== undefined)
      .sort((a, b) => b - a);
    const state: RoleState = {};
    for (const v of versions) {
      const one = await this.read(delegation, v);
      state.newest ??= one;
      if (one.valid >= delegation.threshold) {
        state.signed = one;
        break;
      }
    }
    this.states.set(delegation.name, state);
  }

  forget(name: string): void {
    this.states.delete(name);
  }

  state(name: string): RoleState {
    return this.states.get(name) ?? {};
  }

  /**
   * Writes a new unsigned version of each role whose targets changed or whose newest version has less than half
   * its lifetime left; true when what snapshot lists changed.
   */
  async prepare(
    delegations: Delegation[],
    wanted: Record<string, Record<string, TargetEntry>>,
    now: number,
  ): Promise<boolean> {
    const before = JSON.stringify(this.snapshotMeta(delegations));
    for (const d of delegations) {
      const state = this.state(d.name);
      const targets = wanted[d.name] ?? {};
      const base = state.newest;
      const due = !base || !sameTargets(base.targets, targets) || base.expiresMs - now < this.lifetimeMs / 2;
      if (!due) continue;
      const version = Math.max(base?.version ?? 0, this.listed[`${d.name}.json`]?.version ?? 0) + 1;
      const signed = new Targets({
        version,
        specVersion: '1.0.31',
        expires: tufExpiry(now + this.lifetimeMs),
      });
      for (const [path, t] of Object.entries(targets)) {
        signed.addTarget(
          new TargetFile({
            path,
            length: t.length,
            hashes: { sha256: t.sha256 },
            unrecognizedFields: { custom: t.custom as never },
          }),
        );
      }
      const bytes = Buffer.from(JSON.stringify(new Metadata(signed).toJSON()));
      await writeWhole(join(this.folder, `${version}.${d.name}.json`), bytes);
      state.newest = { version, expiresMs: Date.parse(signed.expires), targets, bytes, valid: 0 };
      this.states.set(d.name, state);
    }
    return JSON.stringify(this.snapshotMeta(delegations)) !== before;
  }

  /** `NAME.json` for snapshot: each role's newest signed version (or newest), and the roles once listed. */
  snapshotMeta(delegations: Delegation[]): Record<string, MetaFile> {
    for (const d of delegations) {
      const state = this.state(d.name);
      const shown = state.signed ?? state.newest;
      if (shown) this.listed[`${d.name}.json`] = metaFile(shown.version, shown.bytes);
    }
    return { ...this.listed };
  }

  /**
   * Adds a team's signatures to the role's newest version. Each must be by a key of the delegation and verify
   * over that version; otherwise nothing is written.
   */
  async addSignatures(
    d: Delegation,
    version: number,
    signatures: Array<{ keyid: string; sig: string }>,
  ): Promise<RoleVersion> {
    const state = this.state(d.name);
    if (state.newest?.version !== version) {
      throw new FleetError(
        'CONFLICT',
        `${d.name} version ${version} is not its newest (${state.newest?.version ?? 'none'}): fetch it again and sign that`,
      );
    }
    const md = Metadata.fromJSON(MetadataKind.Targets, JSON.parse(state.newest.bytes.toString('utf8')));
    for (const s of signatures) {
      const key = d.keys[s.keyid];
      if (!key) {
        throw new FleetError(
          'VALIDATION',
          `key ${s.keyid.slice(0, 16)}… is not a key of delegated role ${d.name}`,
        );
      }
      try {
        key.verifySignature(
          Metadata.fromJSON(MetadataKind.Targets, { ...(md.toJSON() as object), signatures: [s] } as never),
        );
      } catch (e) {
        throw new FleetError(
          'VALIDATION',
          `the signature of key ${s.keyid.slice(0, 16)}… does not verify over ${d.name} version ${version}`,
          undefined,
          { cause: e },
        );
      }
      md.signatures[s.keyid] = new Signature({ keyID: s.keyid, sig: s.sig });
    }
    const bytes = Buffer.from(JSON.stringify(md.toJSON()));
    await writeWhole(join(this.folder, `${version}.${d.name}.json`), bytes);
    const updated = { ...state.newest, bytes, valid: countValid(md, d) };
    state.newest = updated;
    if (updated.valid >= d.threshold) state.signed = updated;
    return updated;
  }

  private async read(d: Delegation, version: number): Promise<RoleVersion> {
    const bytes = await readFile(join(this.folder, `${version}.${d.name}.json`));
    const md = Metadata.fromJSON(MetadataKind.Targets, JSON.parse(bytes.toString('utf8')));
    const targets: Record<string, TargetEntry> = {};
    for (const [path, f] of Object.entries(md.signed.targets)) {
      targets[path] = { length: f.length, sha256: f.hashes.sha256 ?? '', custom: f.custom };
    }
    return { version, expiresMs: Date.parse(md.signed.expires), targets, bytes, valid: countValid(md, d) };
  }
}

/** `N` of `N.NAME.json`. */
export function fileVersion(file: string, name: string): number | undefined {
  const m = /^([1-9]\d{0,8})\.([a-z][a-z0-9-]{0,39})\.json$/.exec(file);
  return m && m[2] === name ? Number(m[1]) : undefined;
}

function countValid(md: Metadata<Targets>, d: Delegation): number {
  let valid = 0;
  for (const s of Object.values(md.signatures)) {
    const key = d.keys[s.keyID];
    if (!key) continue;
    try {
      key.verifySignature(
        Metadata.fromJSON(MetadataKind.Targets, {
          ...(md.toJSON() as object),
          signatures: [{ keyid: s.keyID, sig: s.sig }],
        } as never),
      );
      valid++;
    } catch {
      // Not this key's signature over these bytes (say, by a key the delegation named before): not counted.
    }
  }
  return valid;
}

function sameTargets(a: Record<string, TargetEntry>, b: Record<string, TargetEntry>): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((k) => a[k]?.sha256 === b[k]?.sha256 && a[k]?.length === b[k]?.length);
}

const metaFile = (version: number, bytes: Buffer) =>
  new MetaFile({
    version,
    length: bytes.length,
    hashes: { sha256: createHash('sha256').update(bytes).digest('hex') },
  });

async function writeWhole(path: string, bytes: Buffer): Promise<void> {
  const temp = `${path}.tmp`;
  await writeFile(temp, bytes, { mode: 0o644 });
  await rename(temp, path);
}
