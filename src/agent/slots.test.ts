import { mkdtemp, readdir, readlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeJsonAtomic } from './fsutil.js';
import { decideTrial, Slots } from './slots.js';

async function fresh() {
  const root = await mkdtemp(join(tmpdir(), 'fleetd-slots-'));
  const slots = new Slots(root);
  await slots.init();
  return { root, slots };
}

describe('A/B slots', () => {
  it('starts on slot a with b inactive', async () => {
    const { root, slots } = await fresh();
    expect(await readlink(join(root, 'current'))).toBe('slots/a');
    expect(await slots.active()).toBe('a');
    expect(await slots.inactive()).toBe('b');
    await slots.init(); // a second start changes nothing
    expect(await slots.active()).toBe('a');
  });

  it('switches by renaming a new link over the old one, leaving no temp link', async () => {
    const { root, slots } = await fresh();
    await slots.switchTo('b');
    expect(await readlink(join(root, 'current'))).toBe('slots/b');
    expect((await readdir(root)).sort()).toEqual(['current', 'slots']);
  });

  it('empties the inactive slot and refuses to empty the active one', async () => {
    const { slots } = await fresh();
    await writeFile(join(slots.dir('b'), 'old'), 'x');
    await slots.prepare('b');
    expect(await readdir(slots.dir('b'))).toEqual([]);
    await expect(slots.prepare('a')).rejects.toThrow(/active slot a/);
  });

  it('commits a trial by dropping the marker, or rolls back to the previous slot', async () => {
    const { slots } = await fresh();
    await slots.beginTrial('b', 'upd_1');
    expect(await slots.trial()).toEqual({ slot: 'b', previous: 'a', update_id: 'upd_1', restarts: 0 });
    expect(await slots.active()).toBe('b');
    await slots.commit();
    expect(await slots.trial()).toBeUndefined();
    expect(await slots.active()).toBe('b');

    await slots.beginTrial('a', 'upd_2');
    expect(await slots.rollback()).toBe('b');
    expect(await slots.active()).toBe('b');
    expect(await slots.trial()).toBeUndefined();
  });

  it('counts restarts during a trial and finishes a switch a kill interrupted', async () => {
    const { root, slots } = await fresh();
    // a kill between writing the marker and flipping the link
    await writeJsonAtomic(join(root, 'trial.json'), {
      slot: 'b',
      previous: 'a',
      update_id: 'u',
      restarts: 0,
    });
    const trial = await slots.countRestart();
    expect(trial?.restarts).toBe(1);
    expect((await slots.countRestart())?.restarts).toBe(2);
    await slots.resumeTrial(trial!);
    expect(await slots.active()).toBe('b');
  });

  it('decides what a restart does with a trial', () => {
    expect(decideTrial(1, 3, 'succeeded')).toBe('commit');
    expect(decideTrial(1, 3, 'rolled_back')).toBe('rollback');
    expect(decideTrial(1, 3, 'verifying')).toBe('recheck');
    expect(decideTrial(2, 3, 'installing')).toBe('recheck');
    expect(decideTrial(3, 3, 'verifying')).toBe('crash-loop');
    expect(decideTrial(5, 3, 'succeeded')).toBe('commit'); // a decided outcome wins over the count
    expect(decideTrial(1, 3, 'verifying', 0)).toBe('crash-loop'); // the bootloader's counter ran out
    expect(decideTrial(1, 3, 'verifying', 1)).toBe('recheck');
    expect(decideTrial(1, 3, 'succeeded', 0)).toBe('commit');
  });

  it('keeps a boot counter for the trial that commit removes; an unreadable counter counts as 0', async () => {
    const { root, slots } = await fresh();
    expect(await slots.bootsLeft()).toBeUndefined();
    await slots.beginTrial('b', 'upd_1', 2);
    expect(await slots.bootsLeft()).toBe(2);
    await writeFile(join(root, 'boot-count'), 'garbage');
    expect(await slots.bootsLeft()).toBe(0);
    await slots.commit();
    expect(await slots.bootsLeft()).toBeUndefined();
  });
});
