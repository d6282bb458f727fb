import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { HealthCounters } from './health-counters.js';

it('counts reboots by boot id and crashes since the install began, across agent restarts', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'health-counters-'));
  const state = join(dir, 'counters.json');
  const crashes = join(dir, 'crashes');
  const boot = join(dir, 'boot_id');
  writeFileSync(boot, 'boot-a\n');
  writeFileSync(crashes, '7\n');
  const open = async () => {
    const c = new HealthCounters(state, crashes, boot);
    await c.open();
    return c;
  };
  let c = await open();
  expect(await c.read()).toEqual({ reboots: 0, app_crashes: 7 });
  await c.resetForInstall();
  expect(await c.read()).toEqual({ reboots: 0, app_crashes: 0 });
  writeFileSync(crashes, '9');
  writeFileSync(boot, 'boot-b\n');
  c = await open(); // the device rebooted: a new boot id
  expect(await c.read()).toEqual({ reboots: 1, app_crashes: 2 });
  c = await open(); // the agent restarted, same boot: no reboot counted
  expect(await c.read()).toEqual({ reboots: 1, app_crashes: 2 });
  writeFileSync(crashes, 'garbled');
  expect(await c.read()).toEqual({ reboots: 1 });
});
