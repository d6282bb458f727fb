/**
 * The director's per-device metadata in the store, on SQLite and PostgreSQL: it names exactly the image of the
 * device's open update (and nothing once the update is done), its versions only grow, timestamps are re-signed
 * at half their lifetime, and two replicas signing for the same device at once never write a version twice.
 */
import { Metadata, MetadataKind } from '@tufjs/models';
import { expect, it } from 'vitest';
import { DirectorRepository } from '../src/artifacts/director/director-repository.js';
import { ManualClock } from '../src/core/clock.js';
import { DEFAULT_THRESHOLDS } from '../src/core/device.js';
import type { TimeContext } from '../src/store/store.js';
import { tempDir } from './support/processes.js';
import { forEachBackend, testRelease } from './support/stores.js';
import { installDirector } from './support/tuf.js';

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const HOUR = 3_600_000;
const at = (now: number): TimeContext => ({ now, thresholds: DEFAULT_THRESHOLDS });

const targetsOf = (bytes: Buffer | undefined) =>
  Metadata.fromJSON(MetadataKind.Targets, JSON.parse(String(bytes))).signed;
const versionOf = (bytes: Buffer | undefined) =>
  (JSON.parse(String(bytes)) as { signed: { version: number } }).signed.version;

forEachBackend((backend) => {
  it("names the open update's image for that device alone; versions grow; timestamps re-sign at half life", async () => {
    const store = await backend.open();
    const data = tempDir();
    await installDirector(data, NOW);
    const clock = new ManualClock(NOW);
    const director = (await DirectorRepository.open(data, clock, store.director))!;
    await store.importDevices(
      [
        { id: 'dev-1', hardwareType: 'hw-a', firmwareVersion: '1.0.0' },
        { id: 'dev-2', hardwareType: 'hw-a', firmwareVersion: '1.0.0' },
      ],
      at(NOW),
      'test',
    );
    await store.releases.create(
      { ...testRelease('rel_2', '2.0.0', NOW), sha256: 'a'.repeat(64), size: 42 },
      'test',
    );
    const assigned = await store.updates.assign(['dev-1'], 'rel_2', { action: 'install' }, at(NOW), 'test');
    expect(assigned.assigned).toHaveLength(1);

    const first = await director.current('dev-1');
    expect([first.targetsVersion, first.snapshotVersion, first.timestampVersion]).toEqual([1, 1, 1]);
    const t1 = targetsOf(await director.metadataFile('dev-1', '1.targets.json'));
    expect(Object.keys(t1.targets)).toEqual(['fw@2.0.0']);
    expect(t1.targets['fw@2.0.0']).toMatchObject({ length: 42, hashes: { sha256: 'a'.repeat(64) } });
    expect(t1.targets['fw@2.0.0']?.custom).toMatchObject({ device_id: 'dev-1' });
    // Signed when the device asks for its timestamp: dev-2, with no update, is told to install nothing.
    expect(await director.metadataFile('dev-2', '1.targets.json')).toBeUndefined();
    expect(versionOf(await director.metadataFile('dev-2', 'timestamp.json'))).toBe(1);
    expect(Object.keys(targetsOf(await director.metadataFile('dev-2', '1.targets.json')).targets)).toEqual(
      [],
    );
    // Nothing due: the same documents again, not a new version.
    expect((await director.current('dev-1')).timestampVersion).toBe(1);
    // Not this device's current version: not served.
    expect(await director.metadataFile('dev-1', '7.targets.json')).toBeUndefined();

    clock.advance(13 * HOUR);
    const later = await director.current('dev-1');
    expect([later.targetsVersion, later.snapshotVersion, later.timestampVersion]).toEqual([1, 1, 2]);

    const id = assigned.assigned[0]!.id;
    await store.updates.cancel(id, at(clock.now()), 'test');
    const done = await director.current('dev-1');
    expect([done.targetsVersion, done.snapshotVersion, done.timestampVersion]).toEqual([2, 2, 3]);
    expect(Object.keys(targetsOf(Buffer.from(done.targets)).targets)).toEqual([]);
  });

  it('two replicas signing for one device at once never write a version twice', async () => {
    const [one, two] = await backend.openPair();
    const data = tempDir();
    await installDirector(data, NOW);
    const clock = new ManualClock(NOW);
    const a = (await DirectorRepository.open(data, clock, one.director))!;
    const b = (await DirectorRepository.open(data, clock, two.director))!;
    await one.importDevices([{ id: 'dev-1', hardwareType: 'hw-a' }], at(NOW), 'test');
    let last = 0;
    for (let round = 0; round < 6; round++) {
      clock.advance(13 * HOUR); // every round is due
      const both = await Promise.all([a.current('dev-1'), b.current('dev-1')]);
      const stored = await one.director.get('dev-1');
      // The loser of a race takes what the winner stored: what each answered is what the store holds now.
      for (const m of both) expect(m.timestamp).toBe(stored?.timestamp);
      expect(stored!.timestampVersion).toBe(last + 1);
      last = stored!.timestampVersion;
    }
    const final = await one.director.get('dev-1');
    expect(versionOf(Buffer.from(final!.timestamp))).toBe(final!.timestampVersion);
    expect(final!.timestampVersion).toBeGreaterThanOrEqual(6);
    // A save from a stale version is refused.
    expect(await one.director.save({ ...final!, timestampVersion: final!.timestampVersion + 1 }, 1)).toBe(
      false,
    );
  });
});
