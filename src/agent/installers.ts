/**
 * Puts a verified artifact into a slot and hands it to the handler of its release type (installers/,
 * docs/installers.md). The slot's `release.json` is written last and the download removed only after it,
 * so an install cut short by a kill is simply done again.
 *
 *   every type     the artifact becomes the slot's `payload` (the source of deltas and of rollbacks)
 *   archive        a .tar.gz extracted into the directory `payload`, refused whole if any entry could
 *                  land outside it
 *   bundle         the same, then each component installed by its own handler, all or nothing
 *
 * When the trial ends, `settle` commits or rolls back what the handlers did; the A/B switch is the slots'.
 */
import { copyFile, link, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDir } from './fsutil.js';
import { extractArchive } from './installers/archive.js';
import type { InstallerConfig } from './installers/handler.js';
import { EXTRACTED_TYPES } from './installers/index.js';
import { installParts, type PartContext, settleParts } from './installers/parts.js';
import { bundleParts, installedParts, previousPayloadOf } from './installers/slot-parts.js';
import { type ReleaseRecord, writeRelease } from './state-dir.js';
import type { Manifest, Verdict } from './verify.js';

export { entryProblem, inspectArchive } from './installers/archive.js';
export type { InstallerConfig } from './installers/handler.js';
export { EXTRACTED_TYPES } from './installers/index.js';

export interface InstallInput {
  slotDir: string;
  /** The verified download. */
  artifact: string;
  manifest: Manifest;
  record: Omit<ReleaseRecord, 'installed_at'>;
  installedAt: string;
  /** How long one handler step (a script, `rauc install`, `dpkg -i`…) may run. */
  scriptTimeoutMs: number;
  signal?: AbortSignal;
  config?: InstallerConfig;
  /** The other (active) slot: what runs now, for `requires` and for rollbacks that reinstall it. */
  previousSlotDir?: string;
  /** Picks the components of a bundle that are for this device. */
  hardwareType?: string;
}

export async function install(input: InstallInput): Promise<Verdict> {
  const payload = join(input.slotDir, 'payload');
  await rm(payload, { recursive: true, force: true });
  if (EXTRACTED_TYPES.includes(input.manifest.type)) {
    const extracted = await extractArchive(input.artifact, payload);
    if (!extracted.ok) return extracted;
  } else {
    await placeFile(input.artifact, payload);
  }
  const parts =
    input.manifest.type === 'bundle'
      ? await bundleParts(input.slotDir, input.previousSlotDir, input.hardwareType ?? '')
      : {
          ok: true as const,
          value: [
            {
              name: input.manifest.name,
              type: input.manifest.type,
              version: input.manifest.version,
              payload,
              previous: await previousPayloadOf(input.previousSlotDir, input.manifest.name),
            },
          ],
        };
  if (!parts.ok) return parts;
  const outcome = await installParts(parts.value, contextOf(input));
  if (!outcome.ok) return outcome;
  await fsyncDir(input.slotDir);
  await writeRelease(input.slotDir, { ...input.record, installed_at: input.installedAt });
  await rm(join(input.slotDir, '.download'), { recursive: true, force: true });
  return outcome;
}

export interface SettleInput {
  slotDir: string;
  previousSlotDir: string;
  config?: InstallerConfig;
  timeoutMs: number;
  signal?: AbortSignal;
}

/** Ends a trial for the handlers: commit (the health check passed) or rollback (before switching back). */
export async function settle(stage: 'commit' | 'rollback', input: SettleInput): Promise<Verdict> {
  const parts = await installedParts(input.slotDir, input.previousSlotDir);
  return settleParts(stage, parts, {
    slotDir: input.slotDir,
    config: input.config ?? {},
    timeoutMs: input.timeoutMs,
    signal: input.signal,
  });
}

function contextOf(input: InstallInput): PartContext {
  return {
    slotDir: input.slotDir,
    config: input.config ?? {},
    timeoutMs: input.scriptTimeoutMs,
    signal: input.signal,
  };
}

/** A hard link, so the download stays until the release record is written (a copy where links fail). */
async function placeFile(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch {
    await copyFile(from, to);
  }
}
