/**
 * The agent's telemetry collector on a made-up /proc and /sys (a device's files, not this machine's), custom
 * metrics from a file and a command, reboots counted by the kernel's boot id, and the inventory with the
 * packages dpkg-query really lists here.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { parseMetrics, parseOsRelease, TelemetryCollector } from './telemetry.js';

function fakeRoot(bootId: string, thermal: boolean): string {
  const root = mkdtempSync(join(tmpdir(), 'fleetd-telemetry-'));
  const put = (path: string, text: string) => {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
  };
  put('proc/stat', 'cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3\n');
  put('proc/meminfo', 'MemTotal:        1000000 kB\nMemFree:  100 kB\nMemAvailable:     250000 kB\n');
  put('proc/uptime', '3600.52 7000.00\n');
  put('proc/sys/kernel/random/boot_id', `${bootId}\n`);
  put(
    'etc/os-release',
    'NAME="Debian GNU/Linux"\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n',
  );
  if (thermal) {
    put('sys/class/thermal/thermal_zone0/temp', '41500\n');
    put('sys/class/thermal/thermal_zone1/temp', '56250\n');
  }
  return root;
}

it('reads CPU, memory, disk, temperature, uptime and custom metrics, and counts reboots', async () => {
  const root = fakeRoot('boot-a', true);
  const metricsFile = join(root, 'metrics.txt');
  writeFileSync(metricsFile, 'queue_depth 12\nbad line here\nprinter.paper_pct=80\n');
  const stateFile = join(root, 'state', 'boots.json');
  const collector = new TelemetryCollector({
    root,
    stateFile,
    metricsFile,
    metricsCommand: 'echo \'{"sales_today": 314, "cpu_pct": 999, "oops": "x"}\'',
  });
  const first = await collector.collect();
  expect(first).toMatchObject({
    cpu_pct: 20, // 200 busy of 1,000 since boot
    mem_used_pct: 75,
    temp_c: 56.25,
    uptime_s: 3600,
    reboots: 0,
    queue_depth: 12,
    'printer.paper_pct': 80,
    sales_today: 314,
  });
  expect(first.disk_free_pct).toBeGreaterThan(0);
  expect(first).not.toHaveProperty('oops');

  // The next sample: 50 busy of 100 since the first; then the device reboots (a new boot id).
  writeFileSync(join(root, 'proc/stat'), 'cpu  130 0 120 750 100 0 0 0 0 0\n');
  expect((await collector.collect()).cpu_pct).toBe(50);
  writeFileSync(join(root, 'proc/sys/kernel/random/boot_id'), 'boot-b\n');
  expect((await new TelemetryCollector({ root, stateFile }).collect()).reboots).toBe(1);
  expect((await new TelemetryCollector({ root, stateFile }).collect()).reboots).toBe(1);
});

it('leaves out what the device does not have', async () => {
  const metrics = await new TelemetryCollector({ root: fakeRoot('b', false) }).collect();
  expect(metrics).not.toHaveProperty('temp_c');
  expect(metrics).not.toHaveProperty('reboots'); // no state file to count them in
});

it('reports the inventory: OS, kernel, installed packages and interfaces', async () => {
  const inventory = await new TelemetryCollector({ root: fakeRoot('b', false) }).inventory();
  expect(inventory.os).toBe('Debian GNU/Linux 12 (bookworm)');
  expect(inventory.kernel).toMatch(/^\d+\.\d+/);
  // dpkg itself is installed wherever dpkg-query runs (this is a Debian machine).
  expect(inventory.packages.find((p) => p.name === 'dpkg')?.version).toMatch(/^\d+\.\d+/);
  expect(inventory.interfaces.every((i) => i.name !== 'lo')).toBe(true);
});

it('parses custom metrics and os-release leniently', () => {
  expect(parseMetrics('a 1\nb=2.5\nc x\n d  -3 \n{}')).toEqual({ a: 1, b: 2.5, d: -3 });
  expect(parseMetrics('{"a": 1, "bad name": 2, "s": "3"}')).toEqual({ a: 1 });
  expect(parseOsRelease('NAME=Alpine\nVERSION_ID=3.19\n')).toBe('Alpine 3.19');
  expect(parseOsRelease('')).toBeNull();
});
