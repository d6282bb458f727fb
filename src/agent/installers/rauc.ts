/**
 * A RAUC bundle (`.raucb`): `rauc install` writes the inactive slot group and makes it the bootloader's
 * primary; RAUC checks the bundle's signature against its own keyring. The agent's health check decides:
 * commit marks the booted slot good (after the reboot into it, that is the new one); rollback, before a
 * reboot, points the bootloader back at the booted slot, and after one marks the booted (new) slot bad so
 * the bootloader's next boot falls back. `rauc` talks to the RAUC service over D-Bus.
 */
import type { InstallContext, InstallHandler } from './handler.js';
import { no } from './handler.js';
import { runStep, runTool } from './tool.js';

const command = (ctx: InstallContext) => ctx.config.rauc?.command ?? 'rauc';
const confArgs = (ctx: InstallContext) =>
  ctx.config.rauc?.config ? [`--conf=${ctx.config.rauc.config}`] : [];

export const rauc: InstallHandler = {
  install: (ctx) => runStep('rauc install', command(ctx), [...confArgs(ctx), 'install', ctx.payload], ctx),
  commit: (ctx) => runStep('rauc mark-good', command(ctx), [...confArgs(ctx), 'status', 'mark-good'], ctx),
  async rollback(ctx) {
    const status = await runTool(command(ctx), [...confArgs(ctx), 'status', '--output-format=json'], ctx);
    if (status.kind !== 'exit' || status.code !== 0)
      return no('rauc status failed: cannot tell which slot booted');
    let rebooted: boolean;
    try {
      rebooted = bootedIsPrimary(JSON.parse(status.output.trim().split('\n').pop() ?? ''));
    } catch (e) {
      return no(`rauc status: unreadable answer (${(e as Error).message})`);
    }
    const mark = rebooted ? 'mark-bad' : 'mark-active';
    return runStep(`rauc ${mark}`, command(ctx), [...confArgs(ctx), 'status', mark, 'booted'], ctx);
  },
};

interface RaucStatus {
  boot_primary: string | null;
  slots: Array<Record<string, { state: string }>>;
}

/** True once the device runs the slot the bootloader boots first (the new one, after the reboot). */
export function bootedIsPrimary(status: RaucStatus): boolean {
  const booted = status.slots.flatMap((s) => Object.entries(s)).find(([, slot]) => slot.state === 'booted');
  if (!booted) throw new Error('no slot is marked booted');
  return booted[0] === status.boot_primary;
}
