/**
 * The check of an uploaded `.swu` (SWUpdate's update image): a cpio archive in the `newc` or `crc` format whose
 * first member is `sw-description`, as SWUpdate requires. Only the first header is read: SWUpdate itself checks
 * the signature and the images' hashes on the device.
 */
import type { Readable } from 'node:stream';

const HEADER = 110;
/** The header and the longest first name worth reading. */
export const SWU_HEAD_BYTES = HEADER + 256;

/** Why these first bytes are not a `.swu`; undefined when they are. */
export function swuProblem(head: Buffer): string | undefined {
  const magic = head.subarray(0, 6).toString('latin1');
  if (head.length < HEADER || (magic !== '070701' && magic !== '070702')) {
    return 'a .swu must be a cpio archive in the newc or crc format (made with `cpio -o -H newc`)';
  }
  const nameSize = Number.parseInt(head.subarray(94, 102).toString('latin1'), 16);
  const name = Number.isFinite(nameSize)
    ? head.subarray(HEADER, HEADER + Math.max(0, nameSize - 1)).toString('latin1')
    : '';
  if (name !== 'sw-description') {
    return `the first member of a .swu must be sw-description, not "${name.slice(0, 64)}"`;
  }
  return undefined;
}

/** The first `bytes` bytes of a stream (fewer when it is shorter); the stream is destroyed after. */
export async function readHead(stream: Readable, bytes = SWU_HEAD_BYTES): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of stream) {
      chunks.push(chunk as Buffer);
      length += (chunk as Buffer).length;
      if (length >= bytes) break;
    }
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks).subarray(0, bytes);
}
