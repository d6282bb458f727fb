import { describe, expect, it } from 'vitest';
import { swuProblem } from './swu.js';

/** A newc header for one member, as `cpio -o -H newc` writes it. */
function newc(name: string, magic = '070701'): Buffer {
  const hex = (n: number) => n.toString(16).padStart(8, '0');
  const fields = [1, 0o100644, 0, 0, 1, 0, 4, 0, 0, 0, 0, name.length + 1, 0].map(hex).join('');
  return Buffer.concat([Buffer.from(magic + fields, 'latin1'), Buffer.from(`${name}\0`, 'latin1')]);
}

describe('.swu check', () => {
  it('accepts a newc or crc archive whose first member is sw-description', () => {
    expect(swuProblem(newc('sw-description'))).toBeUndefined();
    expect(swuProblem(newc('sw-description', '070702'))).toBeUndefined();
  });

  it('refuses another first member, naming it', () => {
    expect(swuProblem(newc('payload.txt'))).toMatch(/first member .* sw-description, not "payload.txt"/);
  });

  it('refuses what is not a newc cpio archive', () => {
    expect(swuProblem(Buffer.from('PK\u0003\u0004 a zip file'))).toMatch(/cpio archive/);
    expect(swuProblem(Buffer.alloc(0))).toMatch(/cpio archive/);
    // The old binary format SWUpdate does not read.
    expect(swuProblem(Buffer.concat([Buffer.from('070707'), Buffer.alloc(200)]))).toMatch(/cpio archive/);
  });
});
