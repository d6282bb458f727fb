import { describe, expect, it } from 'vitest';
import { GroupCommit } from './group-commit.js';

describe('group commit', () => {
  it('writes what arrives in one turn of the event loop as one batch, answering each in order', async () => {
    const batches: number[][] = [];
    const group = new GroupCommit(async (items: number[]) => {
      batches.push(items);
      return items.map((n) => n * 10);
    });
    const answers = await Promise.all([1, 2, 3].map((n) => group.submit(n)));
    expect(answers).toEqual([10, 20, 30]);
    expect(batches).toEqual([[1, 2, 3]]);
    expect(await group.submit(4)).toBe(40);
    expect(batches).toEqual([[1, 2, 3], [4]]);
  });

  it('cuts batches at the maximum size', async () => {
    const sizes: number[] = [];
    const group = new GroupCommit(async (items: number[]) => {
      sizes.push(items.length);
      return items;
    }, 2);
    await Promise.all([1, 2, 3, 4, 5].map((n) => group.submit(n)));
    expect(sizes).toEqual([2, 2, 1]);
  });

  it('fails every item of a batch whose write failed, and the next batch still runs', async () => {
    let fail = true;
    const group = new GroupCommit(async (items: number[]) => {
      if (fail) throw new Error('disk full');
      return items;
    });
    const first = await Promise.allSettled([group.submit(1), group.submit(2)]);
    expect(first.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    fail = false;
    expect(await group.submit(3)).toBe(3);
  });

  it('writes a failed batch again item by item, in order, so only the item the write refuses fails', async () => {
    const batches: number[][] = [];
    const group = new GroupCommit(async (items: number[]) => {
      batches.push(items);
      if (items.includes(2)) throw new Error(`cannot store ${items.join(',')}`);
      return items.map((n) => n * 10);
    });
    const answers = await Promise.allSettled([1, 2, 3].map((n) => group.submit(n)));
    expect(answers).toEqual([
      { status: 'fulfilled', value: 10 },
      { status: 'rejected', reason: new Error('cannot store 2') },
      { status: 'fulfilled', value: 30 },
    ]);
    expect(batches).toEqual([[1, 2, 3], [1], [2], [3]]);
  });
});
