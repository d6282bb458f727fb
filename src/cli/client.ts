/** The CLI is a thin client of the operator API: this is its one HTTP helper. */
import { createReadStream, createWriteStream, existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream } from 'node:stream/web';
import { rootCertificates } from 'node:tls';
import { Agent, fetch, type RequestInit, type Response } from 'undici';

export class CliError extends Error {}

export interface ClientOptions {
  server?: string;
  token?: string;
  data?: string;
  /** The CA to trust besides the system's (default: FLEETD_CA, else `<data>/pki/ca.crt` when it exists). */
  ca?: string;
}

export interface Client {
  request<T>(method: 'GET' | 'POST' | 'DELETE' | 'PUT', path: string, body?: unknown): Promise<T>;
  /** Streams a file as the request body (application/octet-stream). */
  upload<T>(path: string, file: string, headers?: Record<string, string>): Promise<T>;
  /** Streams a response body into a file (`-`: standard output). */
  download(path: string, file: string): Promise<number>;
  /** Server-sent events: calls `onEvent` with each event's data until the stream ends. */
  events(path: string, onEvent: (data: unknown) => void): Promise<void>;
  server: string;
}

function resolveToken(options: ClientOptions): string {
  const token = options.token ?? process.env.FLEETD_TOKEN;
  if (token) return token.trim();
  const file = join(options.data ?? process.env.FLEETD_DATA ?? 'fleetd-data', 'admin-token');
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    throw new CliError(`no API token: pass --token, set FLEETD_TOKEN, or run where ${file} exists`);
  }
}

/**
 * What an https connection trusts: the system's CAs and the FleetD CA, so one CLI reaches a server behind a public
 * certificate and one with a FleetD-issued one. Certificates are always checked; there is no way to turn that off.
 */
export function trustedCas(options: ClientOptions): string[] | undefined {
  const explicit = options.ca ?? (process.env.FLEETD_CA || undefined);
  const file = explicit ?? join(options.data ?? process.env.FLEETD_DATA ?? 'fleetd-data', 'pki', 'ca.crt');
  if (explicit === undefined && !existsSync(file)) return undefined;
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (error) {
    throw new CliError(
      `--ca: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
    );
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----'))
    throw new CliError(`--ca: ${file} holds no PEM certificate`);
  return [...rootCertificates, pem];
}

export function createClient(options: ClientOptions): Client {
  const server = (options.server ?? process.env.FLEETD_SERVER ?? 'http://127.0.0.1:8080').replace(/\/$/, '');
  let token: string | undefined;
  let dispatcher: Agent | undefined;
  return {
    server,
    async request<T>(method: 'GET' | 'POST' | 'DELETE' | 'PUT', path: string, body?: unknown): Promise<T> {
      const response = await send(path, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return parse<T>(response);
    },
    async upload<T>(path: string, file: string, headers: Record<string, string> = {}): Promise<T> {
      let size: number;
      try {
        size = statSync(file).size;
      } catch (error) {
        throw new CliError(
          `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
        );
      }
      const response = await send(path, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(size), ...headers },
        body: Readable.toWeb(createReadStream(file)) as unknown as RequestInit['body'],
        // Node's fetch streams a request body only in half-duplex mode.
        duplex: 'half',
      } as RequestInit & { headers: Record<string, string> });
      return parse<T>(response);
    },
    async download(path: string, file: string): Promise<number> {
      const response = await send(path, { method: 'GET', headers: {} });
      if (!response.ok || !response.body) return parse(response);
      // `-`: standard output (a pipe or socket, which /dev/stdout cannot always open).
      const sink = file === '-' ? process.stdout : createWriteStream(file);
      await pipeline(Readable.fromWeb(response.body as ReadableStream), sink);
      return Number(response.headers.get('content-length') ?? 0);
    },
    events,
  };

  async function events(path: string, onEvent: (data: unknown) => void): Promise<void> {
    const response = await send(path, { method: 'GET', headers: { accept: 'text/event-stream' } });
    if (!response.ok || !response.body) return parse(response);
    let buffer = '';
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += Buffer.from(chunk).toString('utf8');
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        const data = buffer
          .slice(0, end)
          .split('\n')
          .filter((line) => line.startsWith('data: '))
          .map((line) => line.slice(6))
          .join('\n');
        if (data) onEvent(JSON.parse(data));
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf('\n\n');
      }
    }
  }

  async function send(
    path: string,
    init: RequestInit & { headers: Record<string, string> },
  ): Promise<Response> {
    token ??= resolveToken(options);
    if (dispatcher === undefined && server.startsWith('https:')) {
      const ca = trustedCas(options);
      dispatcher = new Agent(ca ? { connect: { ca } } : {});
    }
    try {
      return await fetch(`${server}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${token}`, ...init.headers },
        ...(dispatcher ? { dispatcher } : {}),
      });
    } catch (error) {
      const { cause } = error as { cause?: { code?: string; message?: string } };
      const reason = cause?.code ?? cause?.message ?? (error as Error).message;
      if (cause?.code && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(cause.code))
        throw new CliError(
          `cannot reach the FleetD server at ${server}: its certificate is not trusted (${reason}); ` +
            'give the FleetD CA with --ca FILE (its data folder holds pki/ca.crt; also GET /api/v1/pki/ca)',
        );
      throw new CliError(`cannot reach the FleetD server at ${server} (${reason})`);
    }
  }

  async function parse<T>(response: Response): Promise<T> {
    const text = await response.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      throw new CliError(`${server} answered ${response.status} with something that is not JSON`);
    }
    if (!response.ok) {
      const error = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new CliError(
        error?.message ? `${error.message} (${error.code})` : `server answered ${response.status}`,
      );
    }
    return json as T;
  }
}
