/**
 * What the agent reports besides its heartbeat (docs/telemetry.md): numeric telemetry read from /proc and /sys
 * (CPU, memory, disk, temperature where the device has a sensor, uptime, reboots) plus custom metrics from a
 * command or a file, and the inventory (OS, kernel, packages from dpkg-query where present, interfaces).
 * Anything a device does not have is left out, never guessed; the server validates names and bounds.
 */
import { readdir, readFile, statfs } from 'node:fs/promises';
import { networkInterfaces, release } from 'node:os';
import { join } from 'node:path';
import type { InventoryReportJson } from '../protocol/telemetry.js';
import { writeFileAtomic } from './fsutil.js';
import { runShell } from './run-command.js';

export interface TelemetrySources {
  /** Where /proc and /sys are (tests and containers point elsewhere); default `/`. */
  root?: string;
  /** The filesystem whose free share is `disk_free_pct` (default `/`). */
  diskPath?: string;
  /** A file of `name value` lines (or a JSON object) read at each report. */
  metricsFile?: string | undefined;
  /** A shell command printing the same, run at each report (30 s at most). */
  metricsCommand?: string | undefined;
  /** Where the boot id and reboot count are kept across restarts; no reboot count without it. */
  stateFile?: string | undefined;
}

const METRIC = /^[A-Za-z0-9_.:-]{1,64}$/;
/** Custom metrics kept at most; the built-in ones come first. */
const MAX_METRICS = 64;

const read = (path: string) => readFile(path, 'utf8').catch(() => undefined);

/** `name value` lines or a JSON object of numbers; anything else is skipped. */
export function parseMetrics(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    try {
      for (const [k, v] of Object.entries(JSON.parse(trimmed) as Record<string, unknown>)) {
        if (METRIC.test(k) && typeof v === 'number' && Number.isFinite(v)) out[k] = v;
      }
    } catch {
      // Not JSON after all: nothing taken.
    }
    return out;
  }
  for (const line of trimmed.split('\n')) {
    const [name, value, ...rest] = line.trim().split(/[\s=]+/);
    const n = Number(value);
    if (name && METRIC.test(name) && rest.length === 0 && value !== '' && Number.isFinite(n)) out[name] = n;
  }
  return out;
}

interface CpuTimes {
  idle: number;
  total: number;
}

export class TelemetryCollector {
  private previousCpu: CpuTimes | undefined;

  constructor(private readonly sources: TelemetrySources = {}) {}

  private path(...parts: string[]): string {
    return join(this.sources.root ?? '/', ...parts);
  }

  async collect(): Promise<Record<string, number>> {
    const metrics: Record<string, number> = {};
    const put = (name: string, value: number | undefined) => {
      if (value !== undefined && Number.isFinite(value)) metrics[name] = Math.round(value * 100) / 100;
    };
    put('cpu_pct', await this.cpuPct());
    const memory = parseMeminfo((await read(this.path('proc/meminfo'))) ?? '');
    if (memory) put('mem_used_pct', (100 * (memory.total - memory.available)) / memory.total);
    const disk = await statfs(this.sources.diskPath ?? '/').catch(() => undefined);
    if (disk && disk.blocks > 0) put('disk_free_pct', (100 * disk.bavail) / disk.blocks);
    put('temp_c', await this.temperature());
    const uptime = Number(((await read(this.path('proc/uptime'))) ?? '').split(' ')[0]);
    if (uptime > 0) put('uptime_s', Math.floor(uptime));
    put('reboots', await this.reboots());
    for (const [k, v] of Object.entries(await this.custom())) {
      if (Object.keys(metrics).length >= MAX_METRICS) break;
      if (!(k in metrics)) metrics[k] = v;
    }
    return metrics;
  }

  /** Busy share since the previous report (since boot at the first). */
  private async cpuPct(): Promise<number | undefined> {
    const line = ((await read(this.path('proc/stat'))) ?? '').split('\n').find((l) => l.startsWith('cpu '));
    if (!line) return undefined;
    const fields = line.trim().split(/\s+/).slice(1).map(Number);
    const total = fields.reduce((a, b) => a + b, 0);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    const previous = this.previousCpu ?? { idle: 0, total: 0 };
    this.previousCpu = { idle, total };
    const spent = total - previous.total;
    return spent > 0 ? (100 * (spent - (idle - previous.idle))) / spent : undefined;
  }

  /** The hottest thermal zone, in °C; undefined on a device without one. */
  private async temperature(): Promise<number | undefined> {
    const base = this.path('sys/class/thermal');
    const zones = (await readdir(base).catch(() => [])).filter((z) => z.startsWith('thermal_zone'));
    let hottest: number | undefined;
    for (const zone of zones) {
      const milli = Number((await read(join(base, zone, 'temp')))?.trim());
      if (Number.isFinite(milli) && milli !== 0) hottest = Math.max(hottest ?? -Infinity, milli / 1000);
    }
    return hottest;
  }

  /** Boots seen since the agent first ran here: the kernel's boot id changes at each boot. */
  private async reboots(): Promise<number | undefined> {
    const file = this.sources.stateFile;
    const bootId = (await read(this.path('proc/sys/kernel/random/boot_id')))?.trim();
    if (!file || !bootId) return undefined;
    const saved = JSON.parse((await read(file)) ?? '{}') as { bootId?: string; reboots?: number };
    if (saved.bootId === bootId) return saved.reboots ?? 0;
    const reboots = saved.bootId === undefined ? 0 : (saved.reboots ?? 0) + 1;
    await writeFileAtomic(file, JSON.stringify({ bootId, reboots }));
    return reboots;
  }

  private async custom(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    if (this.sources.metricsFile)
      Object.assign(out, parseMetrics((await read(this.sources.metricsFile)) ?? ''));
    if (this.sources.metricsCommand) {
      const result = await runShell(['-c', this.sources.metricsCommand], {
        timeoutMs: 30_000,
        keepOutput: 16_384,
      });
      if (result.kind === 'exit' && result.code === 0) Object.assign(out, parseMetrics(result.output));
    }
    return out;
  }

  async inventory(): Promise<InventoryReportJson> {
    return {
      os: parseOsRelease((await read(this.path('etc/os-release'))) ?? ''),
      kernel: release().slice(0, 128) || null,
      packages: await dpkgPackages(),
      interfaces: interfaces(),
    };
  }
}

function parseMeminfo(text: string): { total: number; available: number } | undefined {
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text)?.[1]);
  const total = field('MemTotal');
  const available = field('MemAvailable');
  return total > 0 && Number.isFinite(available) ? { total, available } : undefined;
}

/** PRETTY_NAME, else NAME VERSION_ID; null when the file says neither. */
export function parseOsRelease(text: string): string | null {
  const values = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) values.set(m[1]!, m[2]!.replace(/^(["'])(.*)\1$/, '$2'));
  }
  const name =
    values.get('PRETTY_NAME') ?? [values.get('NAME'), values.get('VERSION_ID')].filter(Boolean).join(' ');
  return name ? name.slice(0, 128) : null;
}

/** dpkg-query's format: installed state, name, version, tab-separated. */
// biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format fields, not JavaScript's.
const DPKG_FORMAT = ['${db:Status-Abbrev}', '${Package}', '${Version}'].join('\\t');

/** Installed packages with versions from dpkg-query; none on a device without dpkg. */
async function dpkgPackages(): Promise<InventoryReportJson['packages']> {
  const result = await runShell(
    ['-c', `command -v dpkg-query >/dev/null && dpkg-query -W -f '${DPKG_FORMAT}\\n'`],
    { timeoutMs: 60_000, keepOutput: 4 * 1024 * 1024 },
  );
  if (result.kind !== 'exit' || result.code !== 0) return [];
  const packages: InventoryReportJson['packages'] = [];
  for (const line of result.output.split('\n')) {
    const [status, name, version] = line.split('\t');
    // `ii`: installed; removed packages with their config files left are not.
    if (status?.startsWith('ii') && name && version && /^[A-Za-z0-9_.:+-]{1,128}$/.test(name)) {
      packages.push({ name, version: version.slice(0, 128) });
    }
  }
  return packages.slice(0, 10_000);
}

function interfaces(): InventoryReportJson['interfaces'] {
  return Object.entries(networkInterfaces())
    .filter(([name]) => name !== 'lo')
    .slice(0, 64)
    .map(([name, addresses]) => ({
      name: name.slice(0, 64),
      mac: addresses?.find((a) => a.mac !== '00:00:00:00:00:00')?.mac ?? null,
      addresses: (addresses ?? []).slice(0, 32).map((a) => a.cidr ?? a.address),
    }));
}
