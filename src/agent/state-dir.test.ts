import { mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readJson, writeJsonAtomic } from './fsutil.js';
import { StateDir } from './state-dir.js';

const tempDir = () => mkdtemp(join(tmpdir(), 'fleetd-state-'));

describe('state dir', () => {
  it('keeps the credential readable by its owner only', async () => {
    const state = new StateDir(join(await tempDir(), 'agent'));
    await state.init();
    expect(await state.readCredential()).toBeUndefined();
    await state.writeCredential('dev-1.fld_device_secret');
    expect(await state.readCredential()).toBe('dev-1.fld_device_secret');
    expect((await stat(state.path('credential'))).mode & 0o777).toBe(0o600);
    expect((await stat(state.root)).mode & 0o777).toBe(0o700);
  });

  it('round-trips identity and job, and clears the job', async () => {
    const state = new StateDir(await tempDir());
    await state.init();
    await state.writeIdentity({
      device_id: 'd',
      hardware_type: 'hw',
      server: 'http://x',
      initial_firmware: '1.0.0',
    });
    expect(await state.readIdentity()).toEqual({
      device_id: 'd',
      hardware_type: 'hw',
      server: 'http://x',
      initial_firmware: '1.0.0',
    });
    const job = {
      id: 'upd_1',
      action: 'install' as const,
      manifest: '{}',
      signature: 's',
      download_url: '/a',
    };
    await state.writeJob(job);
    expect(await state.readJob()).toEqual(job);
    await state.clearJob();
    expect(await state.readJob()).toBeUndefined();
  });

  it('replaces files whole: a crashed writer leaves only an ignored temp file', async () => {
    const dir = await tempDir();
    const path = join(dir, 'x.json');
    await writeJsonAtomic(path, { v: 1 });
    // what a kill in the middle of the next write leaves behind
    await writeFile(join(dir, '.x.json.abc.tmp'), '{"v": 2, "trunc');
    expect(await readJson(path)).toEqual({ v: 1 });
    await writeJsonAtomic(path, { v: 3 });
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({ v: 3 });
    expect((await readdir(dir)).filter((f) => !f.startsWith('.'))).toEqual(['x.json']);
  });

  it('refuses to guess at a corrupt state file', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'job.json'), '{not json');
    await expect(new StateDir(dir).readJob()).rejects.toThrow();
  });
});
