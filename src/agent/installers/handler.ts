/**
 * One interface for every way a release reaches the device (docs/installers.md). The agent keeps the A/B
 * bookkeeping (slots, trial, boot counter); a handler only does what its tool does:
 *
 *   install   put the release in place (for RAUC and SWUpdate: into the inactive system slot)
 *   commit    after the health check passed (RAUC: mark the booted slot good; file: drop the backup)
 *   rollback  undo install (restore the backup, reinstall the previous package, point RAUC back)
 *
 * Each step is safe to run again: an agent killed in the middle runs it once more after its restart.
 */
import type { Verdict } from '../verify.js';

export interface InstallContext {
  /** The release's or component's name: picks its entry in the config (`file.targets`, `container.services`). */
  name: string;
  version: string;
  /** The verified file (or, for an archive, the directory it was extracted to), kept in the slot. */
  payload: string;
  /** The slot being installed to: scripts run there, handlers keep their backups in it. */
  slotDir: string;
  /** The same name's payload in the other slot (the release running before), if it has one. */
  previous: string | undefined;
  config: InstallerConfig;
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

export interface InstallHandler {
  install(ctx: InstallContext): Promise<Verdict>;
  commit(ctx: InstallContext): Promise<Verdict>;
  rollback(ctx: InstallContext): Promise<Verdict>;
}

/** `fleetd agent --installers FILE`: a JSON object of this shape; every part optional. */
export interface InstallerConfig {
  /** Release or component name → the path a `file`/`firmware`/`app` release replaces (else: the slot only). */
  file?: { targets?: Record<string, string> };
  /** Release or component name → the directory an `archive` release replaces. */
  archive?: { targets?: Record<string, string> };
  /** `rauc` and its system.conf (default: rauc's own, /etc/rauc/system.conf). */
  rauc?: { command?: string; config?: string };
  /** `swupdate -i`, with extra arguments such as `-k cert.pem` or `-H board:rev`. */
  swupdate?: { command?: string; args?: string[] };
  /** dpkg, into `root` (default /) with its `admindir` (default ROOT/var/lib/dpkg). */
  package?: { command?: string; root?: string; admindir?: string };
  /** docker or podman; name → the systemd service restarted after the image loaded. */
  container?: { engine?: string; services?: Record<string, string>; restart?: string };
}

export const ok: Verdict = { ok: true, value: undefined };
export const no = (reason: string): Verdict => ({ ok: false, reason });
