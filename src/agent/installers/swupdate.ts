/**
 * An SWUpdate image (`.swu`): `swupdate -i FILE` runs the handlers its signed sw-description names (raw
 * partitions, files, UBI volumes…). SWUpdate checks the image's signature with the key given in the
 * configured arguments (`-k`). It keeps no undo of its own: an A/B layout switches through the bootloader
 * environment its description sets, so commit and rollback have nothing to do here.
 */
import { type InstallHandler, ok } from './handler.js';
import { runStep } from './tool.js';

export const swupdate: InstallHandler = {
  install: (ctx) =>
    runStep(
      'swupdate',
      ctx.config.swupdate?.command ?? 'swupdate',
      [...(ctx.config.swupdate?.args ?? []), '-i', ctx.payload],
      ctx,
    ),
  commit: async () => ok,
  rollback: async () => ok,
};
