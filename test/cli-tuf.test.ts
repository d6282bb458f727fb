/** `fleetd keys root init|next|sign`: the offline TUF root ceremony and a k-of-n rotation, files only. */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, tempDir } from './support/processes.js';

describe('fleetd keys root', () => {
  it('makes a 2-of-3 root, then a rotation to new keys signed by a threshold of old and new', () => {
    const dir = tempDir('fleetd-cli-tuf-');
    const init = runCli(['keys', 'root', 'init', '--threshold', '2', '--keys', '3', '--out', dir]);
    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout).toContain('version 1, 2 of 3 root keys must sign');
    expect(statSync(join(dir, 'root-keys', 'root-1.key')).mode & 0o777).toBe(0o600);
    const one = JSON.parse(readFileSync(join(dir, '1.root.json'), 'utf8'));
    expect(one.signed.roles.root).toMatchObject({ threshold: 2 });
    expect(Object.keys(one.signatures)).toHaveLength(3);

    const fresh = tempDir('fleetd-cli-tuf-new-');
    expect(runCli(['keys', 'generate', '--out', fresh]).code).toBe(0);
    const next = runCli([
      'keys',
      'root',
      'next',
      join(dir, '1.root.json'),
      '--out',
      join(dir, '2.root.json'),
      '--root-key',
      join(fresh, 'signing.key'),
      '--threshold',
      '1',
    ]);
    expect(next.code, next.stderr).toBe(0);
    const sign = (...keys: string[]) =>
      runCli([
        'keys',
        'root',
        'sign',
        join(dir, '2.root.json'),
        '--previous',
        join(dir, '1.root.json'),
        ...keys.flatMap((k) => ['--key', k]),
      ]);
    const first = sign(join(dir, 'root-keys', 'root-1.key'));
    expect(first.stdout).toMatch(/not ready yet: .*threshold of the current root/);
    const second = sign(join(dir, 'root-keys', 'root-3.key'), join(fresh, 'signing.key'));
    expect(second.stdout).toContain('3 signature(s); the thresholds are met');
  });

  it('refuses a threshold larger than the number of keys', () => {
    const r = runCli(['keys', 'root', 'init', '--threshold', '4', '--keys', '3', '--out', tempDir()]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('--threshold must be from 1 to the number of keys, 3 (got 4)');
  });
});
