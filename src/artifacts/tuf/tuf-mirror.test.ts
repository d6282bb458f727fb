import { mkdtempSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mirrorTufMetadata } from './tuf-mirror.js';

const folder = () => mkdtempSync(join(tmpdir(), 'fleetd-mirror-'));

describe('mirrorTufMetadata', () => {
  it('copies what is new or changed, timestamp last, and nothing when all is in step', async () => {
    const [root, metadata, mirror] = [folder(), folder(), join(folder(), 'out')];
    writeFileSync(join(root, '1.root.json'), 'root 1');
    writeFileSync(join(metadata, '1.targets.json'), 'targets 1');
    writeFileSync(join(metadata, 'timestamp.json'), 'timestamp 1');
    writeFileSync(join(metadata, 'notes.txt'), 'not metadata');
    expect(await mirrorTufMetadata([root, metadata], mirror)).toEqual([
      '1.root.json',
      '1.targets.json',
      'timestamp.json',
    ]);
    expect(await mirrorTufMetadata([root, metadata], mirror)).toEqual([]);

    // A version that gained a signature in place is copied again; so is the new timestamp, after it.
    writeFileSync(join(metadata, '1.targets.json'), 'targets 1, signed twice');
    utimesSync(join(metadata, '1.targets.json'), new Date(), new Date(Date.now() + 5_000));
    writeFileSync(join(metadata, 'timestamp.json'), 'timestamp 2');
    utimesSync(join(metadata, 'timestamp.json'), new Date(), new Date(Date.now() + 5_000));
    expect(await mirrorTufMetadata([root, metadata], mirror)).toEqual(['1.targets.json', 'timestamp.json']);
    expect(readFileSync(join(mirror, '1.targets.json'), 'utf8')).toBe('targets 1, signed twice');
    expect(readFileSync(join(mirror, 'timestamp.json'), 'utf8')).toBe('timestamp 2');
  });
});
