/**
 * A single file (`file`, `firmware`, `app`). It always lands in the slot as `payload`; with a target named
 * for it in the config (`file.targets`), it also replaces that path atomically: copied next to it, synced,
 * renamed over it, after a copy of the old file went into the slot. Rollback puts the old file back the
 * same way (or removes the target when there was none); commit drops the backup.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fsyncDir, isNotFound } from '../fsutil.js';
import { backupDir, backupPath, dropBackup, readBackup, recordBackup } from './backup.js';
import { type InstallContext, type InstallHandler, no, ok } from './handler.js';

const targetOf = (ctx: InstallContext) => ctx.config.file?.targets?.[ctx.name];

export const file: InstallHandler = {
  async install(ctx) {
    const target = targetOf(ctx);
    if (target === undefined) return ok;
    try {
      if (!(await readBackup(ctx.slotDir, ctx.name))) {
        const existed = await exists(target);
        await mkdir(backupDir(ctx.slotDir), { recursive: true });
        if (existed) await copySynced(target, backupPath(ctx.slotDir, ctx.name));
        await recordBackup(ctx.slotDir, ctx.name, { target, existed });
      }
      await replaceFile(ctx.payload, target);
      return ok;
    } catch (e) {
      await file.rollback(ctx);
      return no(`file ${target}: ${(e as Error).message}`);
    }
  },
  async commit(ctx) {
    await dropBackup(ctx.slotDir, ctx.name);
    return ok;
  },
  async rollback(ctx) {
    const backup = await readBackup(ctx.slotDir, ctx.name);
    if (!backup) return ok; // nothing was replaced
    try {
      if (backup.existed) await replaceFile(backupPath(ctx.slotDir, ctx.name), backup.target);
      else await rm(backup.target, { force: true });
      await fsyncDir(dirname(backup.target));
      await dropBackup(ctx.slotDir, ctx.name);
      return ok;
    } catch (e) {
      return no(`restoring ${backup.target}: ${(e as Error).message}`);
    }
  },
};

/** The target holds its old bytes or the new ones, never a mix: a synced copy renamed over it. */
export async function replaceFile(from: string, target: string): Promise<void> {
  await mkdir(dirname(target), { recursive: true });
  const temp = join(dirname(target), `.${basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await copySynced(from, temp);
    await rename(temp, target);
  } finally {
    await rm(temp, { force: true });
  }
  await fsyncDir(dirname(target));
}

async function copySynced(from: string, to: string): Promise<void> {
  await copyFile(from, to);
  const handle = await open(to, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (e) {
    if (isNotFound(e)) return false;
    throw e;
  }
}
