/**
 * The backup a `file` or `archive` install keeps of what it replaced, in the slot it installs to (so it
 * lives exactly as long as that release's trial and the next update clears it). `NAME.json` says whether
 * the target existed: rolling back a first install removes the target instead of restoring it.
 */
import { join } from 'node:path';
import { readJson, removeDurably, writeJsonAtomic } from '../fsutil.js';

export interface BackupRecord {
  target: string;
  existed: boolean;
}

export const backupDir = (slotDir: string) => join(slotDir, '.backup');
export const backupPath = (slotDir: string, name: string) => join(backupDir(slotDir), name);

export function readBackup(slotDir: string, name: string): Promise<BackupRecord | undefined> {
  return readJson<BackupRecord>(`${backupPath(slotDir, name)}.json`);
}

/** Written after the copy is complete: its presence means the backup can be restored. */
export function recordBackup(slotDir: string, name: string, record: BackupRecord): Promise<void> {
  return writeJsonAtomic(`${backupPath(slotDir, name)}.json`, record);
}

/** The record goes first: a half-removed backup is never mistaken for one to restore. */
export async function dropBackup(slotDir: string, name: string): Promise<void> {
  if (!(await readBackup(slotDir, name))) return; // none was taken (no target), or it is gone already
  await removeDurably(`${backupPath(slotDir, name)}.json`);
  await removeDurably(backupPath(slotDir, name));
}
