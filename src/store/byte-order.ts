/** Byte-wise order (UTF-8), as `collate "C"` and SQLite's BINARY compare text: the order rows are locked in. */
export function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
