/**
 * A `.tar.gz` archive. It is always extracted into the slot as the directory `payload` (refused whole if any
 * entry could land outside it); with a target named for it in the config (`archive.targets`), that directory
 * is then replaced: a copy is made beside it, the old one renamed to `TARGET.fleetd-backup`, the copy renamed
 * into place. The two renames are not one atomic step: a kill between them leaves the backup and no target,
 * which rollback (run again by the restarted agent) puts back.
 */
import { cp, mkdir, rename, rm } from 'node:fs/promises';
import { dirname, posix } from 'node:path';
import * as tar from 'tar';
import { fsyncDir } from '../fsutil.js';
import type { Verdict } from '../verify.js';
import { dropBackup, readBackup, recordBackup } from './backup.js';
import { exists } from './file.js';
import { type InstallContext, type InstallHandler, no, ok } from './handler.js';

const targetOf = (ctx: InstallContext) => ctx.config.archive?.targets?.[ctx.name];
const backupOf = (target: string) => `${target}.fleetd-backup`;

export const archive: InstallHandler = {
  async install(ctx) {
    const target = targetOf(ctx);
    if (target === undefined) return ok;
    const fresh = `${target}.fleetd-new`;
    try {
      await rm(fresh, { recursive: true, force: true });
      await mkdir(dirname(target), { recursive: true });
      await cp(ctx.payload, fresh, { recursive: true, verbatimSymlinks: true });
      if (!(await readBackup(ctx.slotDir, ctx.name))) {
        const existed = await exists(target);
        if (existed) await rename(target, backupOf(target));
        await recordBackup(ctx.slotDir, ctx.name, { target, existed });
      }
      await rm(target, { recursive: true, force: true }); // a copy left by an install cut short
      await rename(fresh, target);
      await fsyncDir(dirname(target));
      return ok;
    } catch (e) {
      await rm(fresh, { recursive: true, force: true });
      await archive.rollback(ctx);
      return no(`archive ${target}: ${(e as Error).message}`);
    }
  },
  async commit(ctx) {
    const backup = await readBackup(ctx.slotDir, ctx.name);
    if (backup?.existed) await rm(backupOf(backup.target), { recursive: true, force: true });
    await dropBackup(ctx.slotDir, ctx.name);
    return ok;
  },
  async rollback(ctx) {
    const backup = await readBackup(ctx.slotDir, ctx.name);
    if (!backup) return ok;
    try {
      if (!backup.existed || (await exists(backupOf(backup.target)))) {
        await rm(backup.target, { recursive: true, force: true });
      }
      if (backup.existed && (await exists(backupOf(backup.target)))) {
        await rename(backupOf(backup.target), backup.target);
      }
      await fsyncDir(dirname(backup.target));
      await dropBackup(ctx.slotDir, ctx.name);
      return ok;
    } catch (e) {
      return no(`restoring ${backup.target}: ${(e as Error).message}`);
    }
  },
};

/** Extracts a checked archive into `dir` (which must not exist yet), through a temp directory. */
export async function extractArchive(file: string, dir: string): Promise<Verdict> {
  const problem = await inspectArchive(file);
  if (problem) return no(`archive rejected: ${problem}`);
  const temp = `${dir}.tmp`;
  await rm(temp, { recursive: true, force: true });
  await mkdir(temp, { recursive: true });
  try {
    // tar's own protections (no absolute paths, no `..`, no writing through symlinks) stay on as a second line
    await tar.x({ file, cwd: temp, strict: true, preservePaths: false, preserveOwner: false });
  } catch (e) {
    return no(`archive rejected: ${(e as Error).message}`);
  }
  await rename(temp, dir);
  return ok;
}

/** The first entry that could write outside the extraction directory, or undefined if none can. */
export async function inspectArchive(file: string): Promise<string | undefined> {
  const symlinks = new Set<string>();
  let problem: string | undefined;
  try {
    await tar.t({
      file,
      onReadEntry: (entry) => {
        problem ??= entryProblem({ type: entry.type, path: entry.path, linkpath: entry.linkpath }, symlinks);
      },
    });
  } catch (e) {
    return `unreadable: ${(e as Error).message}`;
  }
  return problem;
}

const ALLOWED_TYPES = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink', 'Link']);

/**
 * Checked lexically, which is sound because the target directory starts empty and no entry may pass
 * through a symlink the archive itself created (`a -> .` then `a/b -> ..` would otherwise escape).
 */
export function entryProblem(
  entry: { type: string; path: string; linkpath?: string | undefined },
  symlinks: Set<string>,
): string | undefined {
  const where = (p: string) => `${entry.path}: ${p}`;
  if (!ALLOWED_TYPES.has(entry.type)) return where(`${entry.type} entries are not allowed`);
  const path = inside(entry.path);
  if (path === undefined) return where('path outside the archive root');
  if (throughSymlink(path, symlinks, true)) return where('path goes through a symlink');
  if (entry.type === 'SymbolicLink') {
    const target = entry.linkpath ?? '';
    const resolved = isAbsolute(target) ? undefined : inside(posix.join(posix.dirname(path), target));
    if (resolved === undefined) return where(`symlink to ${target} points outside`);
    symlinks.add(path);
  }
  if (entry.type === 'Link') {
    const target = inside(entry.linkpath ?? '');
    if (target === undefined || throughSymlink(target, symlinks, false)) {
      return where(`hard link to ${entry.linkpath} points outside`);
    }
  }
  return undefined;
}

/** The normalized relative path, or undefined if absolute or escaping with `..`. */
function inside(p: string): string | undefined {
  if (isAbsolute(p) || p.includes('\\')) return undefined;
  if (p.split('/').includes('..')) return undefined;
  return posix.normalize(p).replace(/\/$/, '');
}

function isAbsolute(p: string): boolean {
  return p.startsWith('/') || /^[a-zA-Z]:/.test(p);
}

function throughSymlink(path: string, symlinks: Set<string>, includeSelf: boolean): boolean {
  const parts = path.split('/');
  const upTo = includeSelf ? parts.length : parts.length - 1;
  for (let i = 1; i <= upTo; i++) if (symlinks.has(parts.slice(0, i).join('/'))) return true;
  return false;
}
