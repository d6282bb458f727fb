/**
 * The device protocol over HTTP (fetch) to live servers: one, or several replicas behind no load balancer.
 * Requests go round-robin over the replicas; a request that gets no answer (refused, reset: a replica is
 * down) goes to the next one, as a device behind a load balancer would be sent elsewhere. A request that got
 * no answer may or may not have been applied: the protocol makes sending it again harmless (heartbeats are
 * idempotent in effect, reports carry a sequence number).
 */
import type { DeviceTransport } from './protocol-device.js';

export interface HttpTransportOptions {
  /** A request without an answer after this long is sent to the next replica (default 10 s). */
  timeoutMs?: number;
  /** Called before each attempt, with the replica it goes to: to add latency, or to count. */
  beforeRequest?: (url: string, path: string) => Promise<void> | void;
}

export class HttpTransport implements DeviceTransport {
  private next = 0;
  private readonly timeoutMs: number;

  constructor(
    /** Base URLs of the replicas, e.g. http://127.0.0.1:8080. */
    private readonly servers: readonly string[],
    private readonly options: HttpTransportOptions = {},
  ) {
    if (servers.length === 0) throw new Error('HttpTransport: no server URL');
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  async post(path: string, body: unknown, credential: string): Promise<{ status: number; body: unknown }> {
    const start = this.next++ % this.servers.length;
    let lastError: unknown;
    for (let i = 0; i < this.servers.length; i++) {
      const server = this.servers[(start + i) % this.servers.length]!;
      await this.options.beforeRequest?.(server, path);
      let answer: { status: number; text: string };
      try {
        const response = await fetch(new URL(path, server), {
          method: 'POST',
          headers: { authorization: `Bearer ${credential}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(this.timeoutMs),
        });
        answer = { status: response.status, text: await response.text() };
      } catch (error) {
        lastError = error; // no (whole) answer from this replica: the next one
        continue;
      }
      return {
        status: answer.status,
        body: answer.text === '' ? null : (JSON.parse(answer.text) as unknown),
      };
    }
    throw new Error(`no replica answered POST ${path}`, { cause: lastError });
  }
}
