/**
 * A container image for Docker or Podman (`container.engine`, default docker). The artifact is either an
 * image archive (`docker save`), loaded with `ENGINE load -i`, or a text file holding one image reference
 * pinned by digest (`registry/app@sha256:…`), pulled with `ENGINE pull`; only a digest makes the pulled
 * bytes the ones the signed manifest names. Then the service the config names for the release
 * (`container.services`) is restarted (`systemctl restart` unless `container.restart` says otherwise).
 * Rollback loads or pulls the previous slot's image and restarts the service again. The agent does not
 * run containers itself: the service definition decides which image tag runs.
 */
import { open } from 'node:fs/promises';
import type { InstallContext, InstallHandler } from './handler.js';
import { no, ok } from './handler.js';
import { runStep } from './tool.js';

const DIGEST_REFERENCE = /^[a-z0-9][a-z0-9._\-/:]*@sha256:[0-9a-f]{64}$/;

const engine = (ctx: InstallContext) => ctx.config.container?.engine ?? 'docker';

async function bring(ctx: InstallContext, path: string) {
  const reference = await referenceIn(path);
  if (reference === 'unpinned') return no('container: an image reference must be pinned by @sha256 digest');
  return reference === undefined
    ? runStep(`${engine(ctx)} load`, engine(ctx), ['load', '-i', path], ctx)
    : runStep(`${engine(ctx)} pull`, engine(ctx), ['pull', reference], ctx);
}

async function restart(ctx: InstallContext) {
  const service = ctx.config.container?.services?.[ctx.name];
  if (service === undefined) return ok;
  const command = ctx.config.container?.restart ?? 'systemctl';
  return runStep(`restarting ${service}`, command, ['restart', service], ctx);
}

export const container: InstallHandler = {
  async install(ctx) {
    const loaded = await bring(ctx, ctx.payload);
    return loaded.ok ? restart(ctx) : loaded;
  },
  commit: async () => ok,
  async rollback(ctx) {
    if (ctx.previous === undefined) return ok; // nothing older to go back to
    const loaded = await bring(ctx, ctx.previous);
    return loaded.ok ? restart(ctx) : loaded;
  },
};

/** A small text file is a reference (undefined: an image archive; 'unpinned': a reference without digest). */
async function referenceIn(path: string): Promise<string | 'unpinned' | undefined> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    if (size > 1024) return undefined;
    const text = (await handle.readFile('utf8')).trim();
    if (DIGEST_REFERENCE.test(text)) return text;
    // A tar archive starts with a file name and NULs; one line of printable text was meant as a reference.
    return /^[\x20-\x7e]+$/.test(text) ? 'unpinned' : undefined;
  } finally {
    await handle.close();
  }
}
