/**
 * An application's stdout and stderr in `NAME.log`, rotated by size: past `maxBytes` the file becomes
 * `NAME.log.1` (older ones shift up to `keep`, the oldest dropped), so the logs of a chatty or crash-looping
 * application never fill the device. Writes are synchronous appends: small, ordered, and nothing is
 * buffered in memory when the agent dies.
 */
import { appendFileSync, existsSync, renameSync, rmSync, statSync } from 'node:fs';

export class RotatingLog {
  private size: number;

  constructor(
    readonly path: string,
    private readonly maxBytes = 1024 * 1024,
    private readonly keep = 3,
  ) {
    this.size = existsSync(path) ? statSync(path).size : 0;
  }

  write(chunk: Buffer | string): void {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (this.size > 0 && this.size + bytes.length > this.maxBytes) this.rotate();
    appendFileSync(this.path, bytes);
    this.size += bytes.length;
  }

  private rotate(): void {
    rmSync(`${this.path}.${this.keep}`, { force: true });
    for (let i = this.keep - 1; i >= 1; i--) {
      if (existsSync(`${this.path}.${i}`)) renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`);
    }
    renameSync(this.path, `${this.path}.1`);
    this.size = 0;
  }
}
