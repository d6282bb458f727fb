/** Operator-side helpers for end-to-end tests against a real server process. */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually } from './eventually.js';
import { tempDir } from './processes.js';

export interface Operator {
  url: string;
  token: string;
  call<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: T }>;
  upload(query: string, data: Buffer): Promise<Record<string, string>>;
  /** Polls until the update reaches one of the states; fails with the last state seen. */
  waitForUpdate(id: string, states: string[], timeoutMs?: number): Promise<Record<string, unknown>>;
}

export function operator(url: string, dataDir: string): Operator {
  const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
  const call = async <T>(method: string, path: string, body?: unknown) => {
    const r = await fetch(`${url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: r.status, body: (await r.json()) as T };
  };
  return {
    url,
    token,
    call,
    async upload(query, data) {
      const r = await fetch(`${url}/api/v1/artifacts?${query}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
        body: data,
      });
      const body = (await r.json()) as Record<string, string>;
      if (r.status !== 201) throw new Error(`upload failed: ${JSON.stringify(body)}`);
      return body;
    },
    waitForUpdate: (id, states, timeoutMs = 60_000) =>
      eventually(
        `update ${id} to reach ${states.join('/')}`,
        async () => {
          const last = (await call<Record<string, unknown>>('GET', `/api/v1/updates/${id}`)).body;
          if (states.includes(last.state as string)) return last;
          throw new Error(`last seen ${JSON.stringify(last)}`);
        },
        { timeoutMs, intervalMs: 200 },
      ),
  };
}

/** The server's release-signing public key in a file, as a device is provisioned with it (`--public-key`). */
export async function pinnedKeyFile(op: Operator): Promise<string> {
  const keys = await op.call<{ keys: Array<{ public_key: string }> }>('GET', '/api/v1/keys');
  const file = join(tempDir(), 'signing.pub');
  writeFileSync(file, keys.body.keys[0]!.public_key);
  return file;
}
