/**
 * Rebuilds a release's image from the running one and a delta, instead of downloading it whole. Nothing is
 * trusted on the way: the delta manifest's signature (by the pinned release key) is checked before the delta
 * is fetched, the delta's bytes against that manifest before the tool reads them, and the rebuilt image
 * against the release's own signed manifest before anything is installed. Any failure, a missing tool
 * included, is a reason to download the full image, never a failed update.
 */
import { spawn } from 'node:child_process';
import type { KeyObject } from 'node:crypto';
import { rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { applyCommand, parseDeltaManifest, type ToolCommand } from '../core/delta.js';
import type { PacingTime } from '../core/token-bucket.js';
import type { DeltaOfferJson } from '../protocol/deltas.js';
import { download, type HttpFetch, hashFile } from './downloader.js';
import { type Manifest, signatureValid, type Verdict, verifyArtifact } from './verify.js';

export interface DeltaInput {
  delta: DeltaOfferJson;
  /** The release's verified manifest: what the rebuilt image must match. */
  manifest: Manifest;
  publicKey: KeyObject;
  /** The running slot's image and its sha256 (from its release record). */
  source: { path: string; sha256: string } | undefined;
  /** The slot's download folder: the delta goes to `delta`, the rebuilt image to `artifact`. */
  downloadDir: string;
  url: string;
  fetch: HttpFetch;
  headers: Record<string, string>;
  signal: AbortSignal;
  /** Bytes per second the delta's download may take (the offer's download_rate_limit). */
  rateLimit?: number | undefined;
  pacing?: PacingTime | undefined;
}

export async function updateByDelta(input: DeltaInput): Promise<Verdict<{ size: number; sha256: string }>> {
  const { delta, manifest: m } = input;
  if (!signatureValid(delta.manifest, delta.signature, input.publicKey))
    return no('delta signature mismatch');
  let dm: ReturnType<typeof parseDeltaManifest>;
  try {
    dm = parseDeltaManifest(delta.manifest);
  } catch (e) {
    return no((e as Error).message);
  }
  if (dm.target_sha256 !== m.sha256) return no('delta is for another release');
  if (!input.source || input.source.sha256 !== dm.source_sha256)
    return no('delta is for another running image');
  const deltaPath = join(input.downloadDir, 'delta');
  const rebuilt = join(input.downloadDir, 'artifact.rebuilt');
  try {
    const got = await download({
      url: input.url,
      dest: deltaPath,
      fetch: input.fetch,
      headers: input.headers,
      signal: input.signal,
      rateLimit: input.rateLimit,
      pacing: input.pacing,
    });
    if (got.size !== dm.size || got.sha256 !== dm.sha256) return no('delta sha256 mismatch');
    const ran = await runTool(
      applyCommand(dm.tool, { source: input.source.path, input: deltaPath, output: rebuilt }),
      input.signal,
    );
    if (!ran.ok) return ran;
    const file = { size: 0, sha256: '' };
    const hash = await hashFile(rebuilt);
    file.sha256 = hash.digest('hex');
    file.size = (await stat(rebuilt)).size;
    const check = verifyArtifact(m, file);
    if (!check.ok) return no(`rebuilt image: ${check.reason}`);
    await rename(rebuilt, join(input.downloadDir, 'artifact'));
    return { ok: true, value: file };
  } finally {
    await rm(rebuilt, { force: true });
    await rm(deltaPath, { force: true });
    await rm(`${deltaPath}.part`, { force: true });
    await rm(`${deltaPath}.part.json`, { force: true });
  }
}

const no = <T>(reason: string): Verdict<T> => ({ ok: false, reason });

/** The tool as a child process: its memory is bounded by the tool, not the agent's heap. */
function runTool(cmd: ToolCommand, signal: AbortSignal): Promise<Verdict> {
  return new Promise((resolve) => {
    const child = spawn(cmd.command, cmd.args, { stdio: ['ignore', 'ignore', 'pipe'], signal });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-512);
    });
    child.on('error', (e: NodeJS.ErrnoException) =>
      resolve(no(e.code === 'ENOENT' ? `${cmd.command} is not installed` : `${cmd.command}: ${e.message}`)),
    );
    child.on('close', (code, sig) =>
      resolve(
        code === 0
          ? { ok: true, value: undefined }
          : no(`${cmd.command} ${code === null ? `killed by ${sig}` : `exit ${code}`}: ${stderr.trim()}`),
      ),
    );
  });
}
