/**
 * An SWUpdate image (`.swu`): `swupdate -i FILE` runs the handlers its signed sw-description names (raw
 * partitions, files, UBI volumes…). SWUpdate checks the image's signature with the key given in the
 * configured arguments (`-k`). It keeps no undo of its own: an A/B layout switches through the bootloader
 * environment its description sets, so commit and rollback have nothing to do here.
 */
import type { CommandResult } from '../run-command.js';
import { type InstallHandler, ok } from './handler.js';
import { runTool, stepVerdict } from './tool.js';

export const swupdate: InstallHandler = {
  install: async (ctx) => {
    const command = ctx.config.swupdate?.command ?? 'swupdate';
    const args = [...(ctx.config.swupdate?.args ?? []), '-i', ctx.payload];
    const result = await runTool(command, args, ctx);
    return installedDespiteExitCode(result) ? ok : stepVerdict('swupdate', result, ctx.timeoutMs);
  },
  commit: async () => ok,
  rollback: async () => ok,
};

/**
 * Debian's SWUpdate 2022.12 can exit 1 after a complete install: at exit, a helper thread it signals calls
 * exit(1) while its main thread is returning 0 (seen in 19 of 40 runs of one good image pinned to one CPU).
 * Its own report, printed before that race, decides then: the installer announced success (it does so only
 * after every handler ran) and nothing logged an error afterwards (a failing post-update command would).
 */
export function installedDespiteExitCode(result: CommandResult): boolean {
  if (result.kind !== 'exit' || result.code !== 1) return false;
  const lines = result.output.split('\n');
  const announced = lines.findLastIndex((l) => /^\[INFO \] : SWUPDATE successful !/.test(l));
  return announced >= 0 && !lines.slice(announced).some((l) => /^\[ERROR\]|\*failed\*/.test(l));
}
