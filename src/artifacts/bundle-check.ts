/**
 * The check of an uploaded `bundle` release (core/release-bundle.ts): a tar archive (gzipped or not) holding a
 * valid `bundle.json` and every component file it names. The archive is streamed through once; only
 * `bundle.json` is kept in memory, up to MAX_DESCRIPTION bytes. The device checks it all again after
 * verifying the signature: this only refuses at upload what no device could install.
 */
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Parser, type ReadEntry } from 'tar';
import { BUNDLE_DESCRIPTION, parseBundleSpec } from '../core/release-bundle.js';

const MAX_DESCRIPTION = 1024 * 1024;

/** Why this archive is not a bundle a device could install; undefined when it is. */
export async function bundleProblem(archive: Readable): Promise<string | undefined> {
  const files = new Set<string>();
  let description: Buffer | undefined;
  let tooLarge = false;
  const parser = new Parser({
    onReadEntry: (entry: ReadEntry) => {
      const path = entry.path.replace(/^\.\//, '');
      files.add(path);
      if (path !== BUNDLE_DESCRIPTION) return entry.resume();
      const chunks: Buffer[] = [];
      let size = 0;
      entry.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_DESCRIPTION) tooLarge = true;
        else chunks.push(chunk);
      });
      entry.on('end', () => {
        description = Buffer.concat(chunks);
      });
    },
  });
  try {
    await pipeline(archive, parser);
  } catch (e) {
    return `a bundle must be a tar archive (.tar or .tar.gz): ${(e as Error).message}`;
  }
  if (tooLarge) return `${BUNDLE_DESCRIPTION} is larger than ${MAX_DESCRIPTION} bytes`;
  if (!description) return `a bundle must hold ${BUNDLE_DESCRIPTION} at its root`;
  const parsed = parseBundleSpec(description.toString('utf8'));
  if ('problem' in parsed) return parsed.problem;
  const missing = parsed.spec.components.filter((c) => !files.has(c.file)).map((c) => c.file);
  if (missing.length > 0) return `${BUNDLE_DESCRIPTION} names files the archive lacks: ${missing.join(', ')}`;
  return undefined;
}
