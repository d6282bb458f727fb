/**
 * Puts a verified artifact into a slot, by release type. The slot's `release.json` is written last and
 * the download removed only after it, so an install cut short by a kill is simply done again.
 *
 *   firmware, file, app  the file becomes `payload`
 *   archive              a .tar.gz extracted into the directory `payload`, refused whole if any entry
 *                        could land outside it
 *   script               the file becomes `payload` and runs with `sh` in the slot, under a timeout
 */
import { copyFile, link, mkdir, rename, rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import * as tar from 'tar';
import { fsyncDir } from './fsutil.js';
import { describeFailure, runShell } from './run-command.js';
import { type ReleaseRecord, writeRelease } from './state-dir.js';
import type { Manifest, Verdict } from './verify.js';

export interface InstallInput {
  slotDir: string;
  /** The verified download. */
  artifact: string;
  manifest: Manifest;
  record: Omit<ReleaseRecord, 'installed_at'>;
  installedAt: string;
  scriptTimeoutMs: number;
  signal?: AbortSignal;
}

export async function install(input: InstallInput): Promise<Verdict> {
  const payload = join(input.slotDir, 'payload');
  await rm(payload, { recursive: true, force: true });
  let outcome: Verdict;
  switch (input.manifest.type) {
    case 'archive':
      outcome = await installArchive(input.artifact, payload);
      break;
    case 'script':
      outcome = await installScript(input, payload);
      break;
    default:
      await placeFile(input.artifact, payload);
      outcome = { ok: true, value: undefined };
  }
  if (!outcome.ok) return outcome;
  await fsyncDir(input.slotDir);
  await writeRelease(input.slotDir, { ...input.record, installed_at: input.installedAt });
  await rm(join(input.slotDir, '.download'), { recursive: true, force: true });
  return outcome;
}

/** A hard link, so the download stays until the release record is written (a copy where links fail). */
async function placeFile(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch {
    await copyFile(from, to);
  }
}

async function installScript(input: InstallInput, payload: string): Promise<Verdict> {
  await placeFile(input.artifact, payload);
  const result = await runShell(['payload'], {
    cwd: input.slotDir,
    timeoutMs: input.scriptTimeoutMs,
    ...(input.signal ? { signal: input.signal } : {}),
  });
  const failure = describeFailure(result, input.scriptTimeoutMs);
  return failure ? { ok: false, reason: `script failed: ${failure}` } : { ok: true, value: undefined };
}

async function installArchive(file: string, payload: string): Promise<Verdict> {
  const problem = await inspectArchive(file);
  if (problem) return { ok: false, reason: `archive rejected: ${problem}` };
  const temp = `${payload}.tmp`;
  await rm(temp, { recursive: true, force: true });
  await mkdir(temp, { recursive: true });
  try {
    // tar's own protections (no absolute paths, no `..`, no writing through symlinks) stay on as a second line
    await tar.x({ file, cwd: temp, strict: true, preservePaths: false, preserveOwner: false });
  } catch (e) {
    return { ok: false, reason: `archive rejected: ${(e as Error).message}` };
  }
  await rename(temp, payload);
  return { ok: true, value: undefined };
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
