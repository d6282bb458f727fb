/**
 * A signed install script: the release's own file, run with `sh` in the slot as `payload install`, and
 * again as `payload commit` or `payload rollback` when the trial ends (a script ignoring its argument only
 * runs once: what it did cannot be undone here). Its bytes are covered by the signed manifest's SHA-256.
 */
import type { InstallContext, InstallHandler } from './handler.js';
import { runStep } from './tool.js';

const step = (stage: string) => (ctx: InstallContext) =>
  runStep(stage === 'install' ? 'script' : `script ${stage}`, 'sh', [ctx.payload, stage], ctx);

export const script: InstallHandler = {
  install: step('install'),
  commit: async () => ({ ok: true, value: undefined }),
  rollback: step('rollback'),
};
