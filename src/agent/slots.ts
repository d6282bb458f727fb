/**
 * A/B slots. `DIR/current` is a symlink to the active slot; it is replaced by creating the new link under
 * a temp name and renaming it over the old one, so it always points at one complete slot.
 *
 * A switch is a trial until committed: `trial.json` (written before the link flips) names the new slot,
 * the previous one and how many times the agent restarted during the trial. A release that crashes the
 * device keeps restarting the agent; after `maxRestarts` restarts without a commit the agent goes back.
 *
 * `boot-count` (plain text: one integer) is the trial's boot counter: written with the trial, decremented by
 * the bootloader on each boot (a U-Boot or GRUB script can do that before the kernel runs), removed at commit
 * or rollback. An agent that starts and finds it at 0 goes back, as after too many restarts.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readlink, rename, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { type DownloadOptions, type DownloadResult, download } from './downloader.js';
import { fsyncDir, isNotFound, readJson, removeDurably, writeFileAtomic, writeJsonAtomic } from './fsutil.js';
import { type InstallInput, install, type SettleInput, settle } from './installers.js';
import { type ReleaseRecord, readRelease } from './state-dir.js';
import type { Manifest, Verdict } from './verify.js';

export type SlotName = 'a' | 'b';

export interface Trial {
  slot: SlotName;
  previous: SlotName;
  update_id: string;
  /** Agent restarts since the switch. */
  restarts: number;
}

export const other = (slot: SlotName): SlotName => (slot === 'a' ? 'b' : 'a');

export class Slots {
  constructor(private readonly root: string) {}

  dir(slot: SlotName): string {
    return join(this.root, 'slots', slot);
  }

  /** First start: both slots exist and `current` points at `a`. */
  async init(): Promise<void> {
    await mkdir(this.dir('a'), { recursive: true });
    await mkdir(this.dir('b'), { recursive: true });
    try {
      await readlink(join(this.root, 'current'));
    } catch (e) {
      if (!isNotFound(e)) throw e;
      await this.switchTo('a');
    }
  }

  async active(): Promise<SlotName> {
    const target = await readlink(join(this.root, 'current'));
    if (target === 'slots/a' || target === 'slots/b') return target.slice(-1) as SlotName;
    throw new Error(`${join(this.root, 'current')} points at ${target}, not at slots/a or slots/b`);
  }

  async inactive(): Promise<SlotName> {
    return other(await this.active());
  }

  /** Empties a slot to receive a new release. Never the active one: that is what the device runs. */
  async prepare(slot: SlotName): Promise<void> {
    if (slot === (await this.active())) throw new Error(`refusing to empty the active slot ${slot}`);
    await rm(this.dir(slot), { recursive: true, force: true });
    await mkdir(this.dir(slot), { recursive: true });
    await fsyncDir(join(this.root, 'slots'));
  }

  async switchTo(slot: SlotName): Promise<void> {
    const temp = join(this.root, `.current.${randomBytes(6).toString('hex')}`);
    await symlink(`slots/${slot}`, temp); // relative: the state dir may be moved
    await rename(temp, join(this.root, 'current'));
    await fsyncDir(this.root);
  }

  release(slot: SlotName): Promise<ReleaseRecord | undefined> {
    return readRelease(this.dir(slot));
  }

  /** Downloads a release's artifact into the slot (resuming a part file left by an earlier attempt). */
  async receive(slot: SlotName, options: Omit<DownloadOptions, 'dest'>): Promise<DownloadResult> {
    await mkdir(join(this.dir(slot), '.download'), { recursive: true });
    return download({ ...options, dest: join(this.dir(slot), '.download', 'artifact') });
  }

  /** The download verified against the manifest: what `staged()` reports until it is installed. */
  markStaged(slot: SlotName, m: Pick<Manifest, 'sha256' | 'size'>): Promise<void> {
    return writeJsonAtomic(join(this.dir(slot), '.download', 'staged.json'), {
      sha256: m.sha256,
      size: m.size,
    });
  }

  staged(slot: SlotName): Promise<{ sha256: string } | undefined> {
    return readJson<{ sha256: string }>(join(this.dir(slot), '.download', 'staged.json'));
  }

  /** Installs the staged download into the slot (see installers.ts); the other slot is what runs now. */
  install(
    slot: SlotName,
    input: Omit<InstallInput, 'slotDir' | 'artifact' | 'previousSlotDir'>,
  ): Promise<Verdict> {
    const slotDir = this.dir(slot);
    return install({
      ...input,
      slotDir,
      artifact: join(slotDir, '.download', 'artifact'),
      previousSlotDir: this.dir(other(slot)),
    });
  }

  /** Commits or rolls back what the trial's release did outside the slot (RAUC, dpkg, file targets…). */
  settle(
    stage: 'commit' | 'rollback',
    trial: Trial,
    options: Omit<SettleInput, 'slotDir' | 'previousSlotDir'>,
  ): Promise<Verdict> {
    return settle(stage, {
      ...options,
      slotDir: this.dir(trial.slot),
      previousSlotDir: this.dir(trial.previous),
    });
  }

  trial(): Promise<Trial | undefined> {
    return readJson<Trial>(join(this.root, 'trial.json'));
  }

  /** The marker goes down first: a kill right after the link flips still finds the trial. */
  async beginTrial(slot: SlotName, updateId: string, boots = DEFAULT_BOOTS): Promise<Trial> {
    const trial: Trial = { slot, previous: other(slot), update_id: updateId, restarts: 0 };
    await writeFileAtomic(join(this.root, 'boot-count'), `${boots}\n`);
    await writeJsonAtomic(join(this.root, 'trial.json'), trial);
    await this.switchTo(slot);
    return trial;
  }

  /** Called once per agent start during a trial; the count is on disk before anything else is tried. */
  async countRestart(): Promise<Trial | undefined> {
    const trial = await this.trial();
    if (!trial) return undefined;
    const next = { ...trial, restarts: trial.restarts + 1 };
    await writeJsonAtomic(join(this.root, 'trial.json'), next);
    return next;
  }

  /** Finishes a switch (a kill may have come between the marker and the link). */
  async resumeTrial(trial: Trial): Promise<void> {
    if ((await this.active()) !== trial.slot) await this.switchTo(trial.slot);
  }

  /** The new slot stays: dropping the marker is the single atomic step of committing. */
  async commit(): Promise<void> {
    await removeDurably(join(this.root, 'trial.json'));
    await removeDurably(join(this.root, 'boot-count')); // without a trial it means nothing
  }

  /** Boots the bootloader still grants the trial; undefined without a counter. Unreadable counts as 0. */
  async bootsLeft(): Promise<number | undefined> {
    let text: string;
    try {
      text = await readFile(join(this.root, 'boot-count'), 'utf8');
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
    const n = Number.parseInt(text.trim(), 10);
    return Number.isFinite(n) ? Math.max(0, n) : 0;
  }

  /** Back to the slot before the trial (or, with no trial, to the other slot); the marker goes last. */
  async rollback(): Promise<SlotName> {
    const trial = await this.trial();
    const target = trial ? trial.previous : await this.inactive();
    await this.switchTo(target);
    if (trial) await this.commit();
    return target;
  }
}

/** Boots a trial is granted before the bootloader's counter runs out. */
export const DEFAULT_BOOTS = 3;

export type TrialDecision = 'commit' | 'rollback' | 'crash-loop' | 'recheck';

/**
 * What to do with a trial found at start. The last report the outbox holds for the update says how far
 * the agent got before it stopped: a decided outcome is finished, otherwise the health check runs
 * again, unless the release has already taken the agent down `maxRestarts` times or the bootloader's
 * boot counter has run out.
 */
export function decideTrial(
  restarts: number,
  maxRestarts: number,
  lastReport: string | undefined,
  bootsLeft?: number,
): TrialDecision {
  if (lastReport === 'succeeded') return 'commit';
  if (lastReport === 'rolled_back' || lastReport === 'failed' || lastReport === 'cancelled')
    return 'rollback';
  return restarts >= maxRestarts || bootsLeft === 0 ? 'crash-loop' : 'recheck';
}
