/**
 * The agent's HTTPS: fetch through an undici dispatcher that trusts the FleetD CA and, once the device has
 * a certificate, presents it (mutual TLS). Certificates are swapped without a gap: a renewed pair gets a new
 * dispatcher for new connections while the old one finishes what it carries, then closes.
 *
 * undici's own fetch, not the global one: Node 20 bundles an older undici whose fetch cannot be relied on
 * to accept a dispatcher from this package. Heartbeats reuse the kept-alive connection; undici also offers
 * TLS sessions for resumption on new connections, though against a Node server that was not seen to resume.
 */
import { Agent, fetch as undiciFetch } from 'undici';
import type { HttpFetch } from './downloader.js';

export interface TlsMaterial {
  /** PEM of the CA(s) the server's certificate must chain to; the system store is not consulted. */
  ca: string;
  /** The device's certificate and key (PEM); absent before enrollment (server-only TLS). */
  certificatePem?: string;
  keyPem?: string;
}

export class TlsFetch {
  private dispatcher: Agent;

  constructor(material: TlsMaterial) {
    this.dispatcher = dispatcherFor(material);
  }

  /** New connections use `material`; requests on the old connections finish before those close. */
  use(material: TlsMaterial): void {
    const old = this.dispatcher;
    this.dispatcher = dispatcherFor(material);
    void old.close().catch(() => undefined); // close() waits for requests in flight
  }

  readonly fetch: HttpFetch = ((input: Parameters<HttpFetch>[0], init?: Parameters<HttpFetch>[1]) =>
    // The global and undici's Request/Response types differ only in name: the objects are the same shape.
    undiciFetch(input as Parameters<typeof undiciFetch>[0], {
      ...(init as Parameters<typeof undiciFetch>[1]),
      dispatcher: this.dispatcher,
    })) as unknown as HttpFetch;

  close(): Promise<void> {
    return this.dispatcher.close();
  }
}

function dispatcherFor(material: TlsMaterial): Agent {
  return new Agent({
    connect: {
      ca: material.ca,
      ...(material.certificatePem && material.keyPem
        ? { cert: material.certificatePem, key: material.keyPem }
        : {}),
      minVersion: 'TLSv1.2',
    },
  });
}

/**
 * A TLS alert by which the server refuses the client certificate itself (revoked, expired, unknown CA):
 * retrying with the same certificate cannot succeed. Node reports it as the fetch error's cause.
 */
export function certificateRefused(error: unknown): string | undefined {
  let e: unknown = error;
  for (let depth = 0; e && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (
      typeof code === 'string' &&
      /ALERT_(CERTIFICATE_(REVOKED|EXPIRED|UNKNOWN)|BAD_CERTIFICATE|UNKNOWN_CA|ACCESS_DENIED)/.test(code)
    ) {
      return code;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
