/**
 * The agent's state kept in memory instead of in a state dir, for running thousands of real agents in one
 * process (`fleetd sim agents`). Same behaviour as StateDir and Slots, minus durability: nothing survives
 * the process, and a downloaded artifact is hashed and verified as it streams in, then discarded (the
 * "installed" slot holds only its release record).
 *
 * Never for a real device: a restart would lose the credential.
 */
import { createHash, randomBytes } from 'node:crypto';
import { DownloadError, type DownloadOptions, type DownloadResult } from './downloader.js';
import type { InstallInput } from './installers.js';
import { other, type SlotName, Slots, type Trial } from './slots.js';
import { type Identity, type JobRecord, type ReleaseRecord, StateDir } from './state-dir.js';
import type { Manifest, Verdict } from './verify.js';

export class MemoryStateDir extends StateDir {
  private credential: string | undefined;
  private identity: Identity | undefined;
  private job: JobRecord | undefined;

  override async init(): Promise<void> {}

  override async readCredential(): Promise<string | undefined> {
    return this.credential;
  }

  override async writeCredential(credential: string): Promise<void> {
    this.credential = credential;
  }

  private secret: string | undefined;

  override async requestSecret(): Promise<string> {
    const secret = this.secret ?? randomBytes(32).toString('base64url');
    this.secret = secret;
    return secret;
  }

  override async readIdentity(): Promise<Identity | undefined> {
    return this.identity;
  }

  override async writeIdentity(identity: Identity): Promise<void> {
    this.identity = identity;
  }

  override async readJob(): Promise<JobRecord | undefined> {
    return this.job;
  }

  override async writeJob(job: JobRecord): Promise<void> {
    this.job = job;
  }

  override async clearJob(): Promise<void> {
    this.job = undefined;
  }
}

interface MemorySlot {
  release?: ReleaseRecord;
  staged?: { sha256: string; size: number };
}

export class MemorySlots extends Slots {
  private current: SlotName = 'a';
  private trialRecord: Trial | undefined;
  private readonly slots: Record<SlotName, MemorySlot> = { a: {}, b: {} };

  override async init(): Promise<void> {}

  override async active(): Promise<SlotName> {
    return this.current;
  }

  override async prepare(slot: SlotName): Promise<void> {
    if (slot === this.current) throw new Error(`refusing to empty the active slot ${slot}`);
    this.slots[slot] = {};
  }

  override async switchTo(slot: SlotName): Promise<void> {
    this.current = slot;
  }

  override async release(slot: SlotName): Promise<ReleaseRecord | undefined> {
    return this.slots[slot].release;
  }

  /** Streams the artifact through sha256 and drops the bytes: memory does not grow with the fleet. */
  override receive(_slot: SlotName, options: Omit<DownloadOptions, 'dest'>): Promise<DownloadResult> {
    return hashDownload(options);
  }

  override async markStaged(slot: SlotName, m: Pick<Manifest, 'sha256' | 'size'>): Promise<void> {
    this.slots[slot].staged = { sha256: m.sha256, size: m.size };
  }

  override async staged(slot: SlotName): Promise<{ sha256: string } | undefined> {
    return this.slots[slot].staged;
  }

  override async install(
    slot: SlotName,
    input: Omit<InstallInput, 'slotDir' | 'artifact' | 'previousSlotDir'>,
  ): Promise<Verdict> {
    this.slots[slot] = { release: { ...input.record, installed_at: input.installedAt } };
    return { ok: true, value: undefined };
  }

  /** Nothing was installed outside the slot: there is nothing to commit or undo. */
  override async settle(): Promise<Verdict> {
    return { ok: true, value: undefined };
  }

  override async bootsLeft(): Promise<number | undefined> {
    return undefined;
  }

  override async trial(): Promise<Trial | undefined> {
    return this.trialRecord;
  }

  override async beginTrial(slot: SlotName, updateId: string): Promise<Trial> {
    this.trialRecord = { slot, previous: other(slot), update_id: updateId, restarts: 0 };
    this.current = slot;
    return this.trialRecord;
  }

  override async countRestart(): Promise<Trial | undefined> {
    if (this.trialRecord) this.trialRecord = { ...this.trialRecord, restarts: this.trialRecord.restarts + 1 };
    return this.trialRecord;
  }

  override async commit(): Promise<void> {
    this.trialRecord = undefined;
  }
}

/** A download with no file: no resume (there is no part file to resume from), same errors as download(). */
async function hashDownload(options: Omit<DownloadOptions, 'dest'>): Promise<DownloadResult> {
  let res: Response;
  try {
    res = await (options.fetch ?? fetch)(options.url, {
      headers: { ...options.headers },
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (e) {
    if (options.signal?.aborted) throw e;
    throw new DownloadError(`download failed: ${(e as Error).message}`);
  }
  if (res.status !== 200) {
    await res.body?.cancel();
    const permanent = res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429;
    throw new DownloadError(`download failed: HTTP ${res.status}`, res.status, permanent);
  }
  const length = res.headers.has('content-length') ? Number(res.headers.get('content-length')) : undefined;
  const hash = createHash('sha256');
  let done = 0;
  await options.onProgress?.(0, length);
  if (res.body) {
    try {
      for await (const chunk of res.body) {
        hash.update(chunk);
        done += chunk.byteLength;
        await options.onProgress?.(done, length);
      }
    } catch (e) {
      if (options.signal?.aborted) throw e;
      throw new DownloadError(`download interrupted at ${done} bytes: ${(e as Error).message}`);
    }
  }
  if (length !== undefined && done !== length) {
    throw new DownloadError(`download incomplete: ${done} of ${length} bytes`);
  }
  return { size: done, sha256: hash.digest('hex'), resumedFrom: 0 };
}
