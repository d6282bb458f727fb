/**
 * The reboots and application crashes the agent reports with each heartbeat (docs/health-gates.md), counted
 * since the running release was installed, so the server's health gate can tell a release that installs fine
 * and then keeps crashing. Reboots: the kernel's boot id changed since the agent last looked. Crashes: the
 * application's supervisor (a systemd unit's ExecStopPost, a wrapper script) keeps a running count in a file
 * (`--app-crash-file`); the agent reports how far it moved since the install began. Kept in the state folder
 * so a reboot or an agent restart does not reset them.
 */
import { readFile } from 'node:fs/promises';
import { isNotFound, readJson, writeJsonAtomic } from './fsutil.js';

interface Stored {
  boot_id: string | null;
  reboots: number;
  crash_baseline: number;
}

export interface HealthCounts {
  reboots: number;
  app_crashes?: number;
}

const BOOT_ID = '/proc/sys/kernel/random/boot_id';

export class HealthCounters {
  private stored: Stored = { boot_id: null, reboots: 0, crash_baseline: 0 };

  constructor(
    /** Where the counters are kept (in the state folder); undefined keeps them in memory. */
    private readonly path: string | undefined,
    private readonly crashFile: string | undefined,
    private readonly bootIdFile = BOOT_ID,
  ) {}

  /** Loads the counters and counts a reboot when the boot id differs from the one seen last. */
  async open(): Promise<void> {
    if (this.path) this.stored = (await readJson<Stored>(this.path)) ?? this.stored;
    const boot = await readText(this.bootIdFile);
    if (boot !== null && this.stored.boot_id !== null && boot !== this.stored.boot_id) this.stored.reboots++;
    this.stored.boot_id = boot;
    await this.save();
  }

  /** A release is about to be installed: what happens from now on is the new release's. */
  async resetForInstall(): Promise<void> {
    this.stored = { ...this.stored, reboots: 0, crash_baseline: (await this.crashCount()) ?? 0 };
    await this.save();
  }

  async read(): Promise<HealthCounts> {
    const crashes = await this.crashCount();
    return {
      reboots: this.stored.reboots,
      // A count that went down (the file was recreated) starts again from there.
      ...(crashes !== null
        ? { app_crashes: Math.max(0, crashes - Math.min(crashes, this.stored.crash_baseline)) }
        : {}),
    };
  }

  /** The crash file's count; null without one. An unreadable or garbled file reads as no report, not as 0. */
  private async crashCount(): Promise<number | null> {
    if (this.crashFile === undefined) return null;
    const text = await readText(this.crashFile);
    if (text === null) return 0; // no crash yet: the supervisor writes the file on the first one
    const n = Number(text);
    return Number.isSafeInteger(n) && n >= 0 ? n : null;
  }

  private async save(): Promise<void> {
    if (this.path) await writeJsonAtomic(this.path, this.stored);
  }
}

async function readText(path: string): Promise<string | null> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (e) {
    if (isNotFound(e)) return null;
    throw e;
  }
}
