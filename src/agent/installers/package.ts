/**
 * A Debian package (`.deb`) through `dpkg -i`, into the root the config names (`package.root`, default /)
 * with its package database (`package.admindir`, default ROOT/var/lib/dpkg). dpkg checks the package's
 * dependencies against that database and refuses what they do not allow. Rollback reinstalls the package
 * the other slot holds (the release that ran before), or removes the package when there was none; dpkg
 * cannot restore a configuration a maintainer script changed, which is the limit of a package rollback.
 */
import { describeFailure } from '../run-command.js';
import { type InstallContext, type InstallHandler, no, ok } from './handler.js';
import { runStep, runTool } from './tool.js';

const dpkg = (ctx: InstallContext) => ctx.config.package?.command ?? 'dpkg';

function where(ctx: InstallContext): string[] {
  const c = ctx.config.package;
  return [
    ...(c?.root !== undefined ? [`--root=${c.root}`] : []),
    ...(c?.admindir !== undefined ? [`--admindir=${c.admindir}`] : []),
  ];
}

export const packageHandler: InstallHandler = {
  async install(ctx) {
    const installed = await runStep('dpkg -i', dpkg(ctx), [...where(ctx), '--install', ctx.payload], ctx);
    if (installed.ok) return installed;
    // dpkg leaves a package it could not configure half-installed: put back what ran before
    const undone = await packageHandler.rollback(ctx);
    return undone.ok ? installed : no(`${installed.reason}; undoing it failed too: ${undone.reason}`);
  },
  commit: async () => ok,
  async rollback(ctx) {
    if (ctx.previous !== undefined) {
      return runStep('dpkg -i (previous)', dpkg(ctx), [...where(ctx), '--install', ctx.previous], ctx);
    }
    const field = await runTool('dpkg-deb', ['--field', ctx.payload, 'Package'], ctx);
    const failure = describeFailure(field, ctx.timeoutMs);
    if (failure || !('output' in field)) return no(`dpkg-deb --field failed: ${failure}`);
    const name = field.output.trim();
    return runStep('dpkg --purge', dpkg(ctx), [...where(ctx), '--purge', name], ctx);
  },
};
