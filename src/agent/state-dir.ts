/**
 * The agent's on-disk state (`--state-dir DIR`). Every file is replaced atomically, so a kill at any
 * instant leaves either the old or the new version. Layout:
 *
 *   credential      0600  the device credential (`<device id>.fld_device_…`), written once at enrollment
 *   identity.json         device id, hardware type, server and the firmware given at first start
 *   job.json              the update being worked on (absent when idle)
 *   outbox.json           status reports not yet delivered (see outbox.ts)
 *   trial.json            the slot just switched to and not yet committed (see slots.ts)
 *   current -> slots/a    the active slot
 *   slots/{a,b}/          release.json (the installed release record), payload, .download/
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DeltaOfferJson } from '../protocol/deltas.js';
import type { PendingUpdateJson } from '../protocol/device-api.js';
import { isNotFound, readJson, removeDurably, writeFileAtomic, writeJsonAtomic } from './fsutil.js';

export interface Identity {
  device_id: string;
  hardware_type: string;
  server: string;
  /** The firmware version given at first start: reported until a release of ours is active. */
  initial_firmware?: string;
}

export type UpdateAction = PendingUpdateJson['action'];

/** The update in progress, kept so that work resumes after a restart without asking the server. */
export interface JobRecord {
  id: string;
  rollout_id?: string;
  action: UpdateAction;
  manifest: string;
  signature: string;
  download_url: string;
  /** A delta offered with the update; dropped once it failed, so the full image is fetched from then on. */
  delta?: DeltaOfferJson;
}

/** What a slot holds; written last when installing, so its presence means the slot is complete. */
export interface ReleaseRecord {
  name: string;
  version: string;
  type: string;
  sha256: string;
  size: number;
  update_id: string;
  /** The signed manifest and its signature, so the slot can be re-verified later. */
  manifest: string;
  signature: string;
  installed_at: string;
}

export class StateDir {
  constructor(readonly root: string) {}

  path(...parts: string[]): string {
    return join(this.root, ...parts);
  }

  async init(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    await chmod(this.root, 0o700); // it holds the credential
  }

  async readCredential(): Promise<string | undefined> {
    try {
      const text = (await readFile(this.path('credential'), 'utf8')).trim();
      return text === '' ? undefined : text;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  writeCredential(credential: string): Promise<void> {
    return writeFileAtomic(this.path('credential'), `${credential}\n`, 0o600);
  }

  /**
   * The secret this device asks to join the approval queue with (docs/enrollment.md), made once and kept (0600):
   * asking again with it proves the device is the one that asked first.
   */
  async requestSecret(): Promise<string> {
    const file = this.path('request-secret');
    try {
      const kept = (await readFile(file, 'utf8')).trim();
      if (kept !== '') return kept;
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    const secret = randomBytes(32).toString('base64url');
    await writeFileAtomic(file, `${secret}\n`, 0o600);
    return secret;
  }

  readIdentity(): Promise<Identity | undefined> {
    return readJson<Identity>(this.path('identity.json'));
  }

  writeIdentity(identity: Identity): Promise<void> {
    return writeJsonAtomic(this.path('identity.json'), identity);
  }

  readJob(): Promise<JobRecord | undefined> {
    return readJson<JobRecord>(this.path('job.json'));
  }

  writeJob(job: JobRecord): Promise<void> {
    return writeJsonAtomic(this.path('job.json'), job);
  }

  clearJob(): Promise<void> {
    return removeDurably(this.path('job.json'));
  }
}

export function readRelease(slotDir: string): Promise<ReleaseRecord | undefined> {
  return readJson<ReleaseRecord>(join(slotDir, 'release.json'));
}

export function writeRelease(slotDir: string, record: ReleaseRecord): Promise<void> {
  return writeJsonAtomic(join(slotDir, 'release.json'), record);
}
