import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar';
import { describe, expect, it } from 'vitest';
import type { ReleaseType } from '../core/manifest.js';
import { entryProblem, inspectArchive, install } from './installers.js';
import { readRelease } from './state-dir.js';
import type { Manifest } from './verify.js';

/** A slot with a verified download in it, as the agent leaves it before installing. */
async function slotWith(content: Buffer, type: ReleaseType, scriptTimeoutMs = 5000) {
  const root = await mkdtemp(join(tmpdir(), 'fleetd-install-'));
  const slotDir = join(root, 'slots', 'b');
  await mkdir(join(slotDir, '.download'), { recursive: true });
  const artifact = join(slotDir, '.download', 'artifact');
  await writeFile(artifact, content);
  const manifest: Manifest = {
    name: 'app',
    version: '1.2.3',
    type,
    hardware: ['hw'],
    size: content.length,
    sha256: createHash('sha256').update(content).digest('hex'),
    created: '2024-10-20T00:00:00Z',
    allow_downgrade: false,
  };
  const input = {
    slotDir,
    artifact,
    manifest,
    record: { ...manifest, update_id: 'upd_1', manifest: '{}', signature: 'sig' },
    installedAt: '2024-10-20T00:00:00.000Z',
    scriptTimeoutMs,
  };
  return { root, slotDir, input };
}

/** A tar.gz built header by header, so it can hold what no well-behaved tool would write. */
function rawTarGz(entries: { path: string; type?: string; linkpath?: string; body?: string }[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? '');
    const header = new tar.Header({
      path: e.path,
      type: (e.type ?? 'File') as 'File',
      mode: 0o644,
      size: e.type === undefined || e.type === 'File' ? body.length : 0,
      mtime: new Date(0),
      ...(e.linkpath ? { linkpath: e.linkpath } : {}),
    });
    const block = Buffer.alloc(512);
    header.encode(block);
    blocks.push(block);
    if (body.length > 0 && (e.type ?? 'File') === 'File') {
      blocks.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
    }
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

describe('installers', () => {
  it('moves a firmware file into the slot as payload, then writes release.json', async () => {
    const { slotDir, input } = await slotWith(Buffer.from('firmware image'), 'firmware');
    expect(await install(input)).toEqual({ ok: true, value: undefined });
    expect(await readFile(join(slotDir, 'payload'), 'utf8')).toBe('firmware image');
    expect(await readRelease(slotDir)).toMatchObject({
      version: '1.2.3',
      update_id: 'upd_1',
      type: 'firmware',
    });
    expect(await exists(join(slotDir, '.download'))).toBe(false);
  });

  it('installs again cleanly after a kill mid-install (the download is kept until release.json exists)', async () => {
    const { slotDir, input } = await slotWith(Buffer.from('app bundle'), 'app');
    await writeFile(join(slotDir, 'payload'), 'half written'); // what a kill could leave
    expect((await install(input)).ok).toBe(true);
    expect(await readFile(join(slotDir, 'payload'), 'utf8')).toBe('app bundle');
  });

  it('extracts a tar.gz archive into payload/', async () => {
    const src = await mkdtemp(join(tmpdir(), 'fleetd-src-'));
    await mkdir(join(src, 'bin'));
    await writeFile(join(src, 'bin', 'run.sh'), 'echo hi');
    await symlink('bin/run.sh', join(src, 'start'));
    const archive = join(src, '..', `${src.split('/').at(-1)}.tgz`);
    await tar.c({ gzip: true, file: archive, cwd: src }, ['bin', 'start']);
    const { slotDir, input } = await slotWith(await readFile(archive), 'archive');
    expect(await install(input)).toEqual({ ok: true, value: undefined });
    expect(await readFile(join(slotDir, 'payload', 'bin', 'run.sh'), 'utf8')).toBe('echo hi');
    expect(await readlink(join(slotDir, 'payload', 'start'))).toBe('bin/run.sh');
  });

  const malicious: [string, Parameters<typeof rawTarGz>[0], RegExp][] = [
    ['a path with ..', [{ path: '../../evil', body: 'pwned' }], /\.\.\/\.\.\/evil: path outside/],
    ['an absolute path', [{ path: '/tmp/fleetd-evil-abs', body: 'pwned' }], /path outside/],
    [
      'a symlink pointing outside',
      [{ path: 'link', type: 'SymbolicLink', linkpath: '../../..' }],
      /points outside/,
    ],
    ['an absolute symlink', [{ path: 'etc', type: 'SymbolicLink', linkpath: '/etc' }], /points outside/],
    ['a hard link pointing outside', [{ path: 'hl', type: 'Link', linkpath: '../../outside' }], /hard link/],
    [
      'a write through a symlink',
      [
        { path: 'here', type: 'SymbolicLink', linkpath: '.' },
        { path: 'here/up', type: 'SymbolicLink', linkpath: '..' },
      ],
      /goes through a symlink/,
    ],
    ['a device node', [{ path: 'dev', type: 'CharacterDevice' }], /not allowed/],
  ];
  it.each(malicious)('refuses an archive with %s, writing nothing', async (_name, entries, reason) => {
    const { root, slotDir, input } = await slotWith(
      rawTarGz([{ path: 'ok.txt', body: 'fine' }, ...entries]),
      'archive',
    );
    const result = await install(input);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.reason).toMatch(/^archive rejected: /);
    expect(!result.ok && result.reason).toMatch(reason);
    expect(await exists(join(slotDir, 'payload'))).toBe(false);
    expect(await exists(join(slotDir, 'release.json'))).toBe(false);
    expect(await exists(join(root, 'evil'))).toBe(false);
    expect(await exists('/tmp/fleetd-evil-abs')).toBe(false);
  });

  it('checks entries one by one', async () => {
    const links = new Set<string>();
    expect(entryProblem({ type: 'File', path: 'a/./b' }, links)).toBeUndefined();
    expect(entryProblem({ type: 'SymbolicLink', path: 'a/l', linkpath: '../b' }, links)).toBeUndefined();
    expect(entryProblem({ type: 'File', path: 'a/l/x' }, links)).toMatch(/through a symlink/);
    expect(entryProblem({ type: 'Link', path: 'h', linkpath: 'a/b' }, links)).toBeUndefined();
    expect(await inspectArchive('/nonexistent.tgz')).toMatch(/unreadable/);
  });

  it('runs a script with sh in the slot', async () => {
    const { slotDir, input } = await slotWith(Buffer.from('echo ran > marker\n'), 'script');
    expect((await install(input)).ok).toBe(true);
    expect(await readFile(join(slotDir, 'marker'), 'utf8')).toBe('ran\n');
    expect((await readRelease(slotDir))?.type).toBe('script');
  });

  it('fails a script by its exit code, without a release record', async () => {
    const { slotDir, input } = await slotWith(Buffer.from('exit 3\n'), 'script');
    expect(await install(input)).toEqual({ ok: false, reason: 'script failed: exit 3' });
    expect(await readRelease(slotDir)).toBeUndefined();
  });

  it('kills a script that runs past its timeout, with whatever it started', async () => {
    const { slotDir, input } = await slotWith(
      Buffer.from('sleep 30 & echo $! > child\nwait\n'),
      'script',
      300,
    );
    expect(await install(input)).toEqual({ ok: false, reason: 'script failed: timed out after 300ms' });
    const child = Number(await readFile(join(slotDir, 'child'), 'utf8'));
    // The background sleep dies with its group (gone, or a zombie waiting for init to reap it). The kill is
    // delivered asynchronously, so a loaded machine may show it alive for a moment: look until it is not,
    // well before the 30 s it would sleep.
    const dead = async () => {
      const status = await readFile(`/proc/${child}/stat`, 'utf8').catch(() => 'gone');
      return status === 'gone' || status.split(' ')[2] === 'Z';
    };
    let died = await dead();
    for (let i = 0; i < 100 && !died; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      died = await dead();
    }
    expect(died).toBe(true);
  });
});
