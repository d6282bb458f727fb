/**
 * Where webhooks may be sent. A webhook URL is chosen by an operator but requested by the server, from inside
 * its network: without a policy it reaches FleetD's own API, the database's port or a cloud metadata service
 * (169.254.169.254), and its last error tells whether a port is open. So by default a webhook may only reach
 * public addresses: a literal address is checked when the webhook is registered, and every address a name
 * resolves to is checked when a request connects (after DNS, on the address actually dialled, so a name that
 * changes what it resolves to cannot slip past). Redirects are not followed, so there is no second hop to
 * check. `fleetd server --webhook-allow-private` lifts the policy for receivers on a private network.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions, type LookupOptions } from 'node:dns';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP } from 'node:net';
import { FleetError } from '../core/errors.js';

/** Ranges no webhook may reach by default (IPv4-mapped IPv6 addresses match their IPv4 range). */
const PRIVATE = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 96], // unspecified, loopback, IPv4-compatible
  ['64:ff9b::', 96], // NAT64: an IPv4 address behind it may be private
  ['64:ff9b:1::', 48], // local-use NAT64
  ['fc00::', 7], // unique local (AWS metadata: fd00:ec2::254)
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv6');
}

/** The error every refused target gives, whatever lies behind it: no port-probe answer. */
export const NOT_ALLOWED = 'address not allowed';

const FLAG_HINT = 'start the server with --webhook-allow-private to allow private receivers';

/** Whether an IP address is loopback, private, link-local, CGNAT, unique-local, multicast or reserved. */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return true; // not an address: never dialled
  return PRIVATE.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

/** A URL's host without IPv6 brackets or the root's trailing dot, lower case. */
const bareHost = (url: URL) =>
  url.hostname
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/\.$/, '')
    .toLowerCase();

/** Names that resolve to loopback by definition (RFC 6761). */
const isLocalhost = (host: string) => host === 'localhost' || host.endsWith('.localhost');

/**
 * At registration: a URL whose host is a private address (or localhost) is refused, as its deliveries would
 * be. Names are checked again on every delivery, after DNS.
 */
export function checkWebhookTarget(url: URL, field = 'url'): void {
  const host = bareHost(url);
  if ((isIP(host) !== 0 && isPrivateAddress(host)) || isLocalhost(host)) {
    throw new FleetError(
      'VALIDATION',
      `${field}: ${host} is a loopback, private, link-local or metadata address; webhooks are sent to public addresses only (${FLAG_HINT})`,
      { field },
    );
  }
}

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/** A request FleetD refused to make; its message is the webhook's last error, the same whatever the port. */
export class EgressRefused extends Error {
  override readonly name = 'EgressRefused';
}

const notAllowed = (host: string, why: string) =>
  new EgressRefused(`${NOT_ALLOWED}: ${host} ${why} (${FLAG_HINT})`);

/**
 * A `lookup` for http.request that keeps only public addresses, so the socket can only connect to one. A
 * literal address in the URL is never looked up: check it with `checkWebhookTarget` before the request.
 */
export function publicLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  const all: LookupAllOptions = { all: true, ...(options.family ? { family: options.family } : {}) };
  dnsLookup(hostname, all, (error, addresses) => {
    if (error) return callback(error, []);
    const allowed = addresses.filter((a) => !isPrivateAddress(a.address));
    if (allowed.length === 0) return callback(notAllowed(hostname, 'resolves to no public address'), []);
    if (options.all) return callback(null, allowed);
    return callback(null, allowed[0]!.address, allowed[0]!.family);
  });
}

export interface EgressResponse {
  status: number;
  statusText: string;
}

/**
 * POSTs `body` to a webhook URL under the egress policy; resolves with the status once the answer's head
 * arrives (its body is discarded). A redirect is an answer like any other: it is not followed.
 */
export function postWebhook(
  target: string,
  headers: Record<string, string>,
  body: string,
  options: { signal: AbortSignal; allowPrivate: boolean },
): Promise<EgressResponse> {
  const url = new URL(target);
  // Registered before such URLs were refused: never sent, as the password would be.
  if (url.username || url.password) {
    return Promise.reject(
      new EgressRefused('the URL carries credentials; delete the webhook and register it without them'),
    );
  }
  // A literal address is dialled without a lookup: checked here. A name is checked by publicLookup.
  const host = bareHost(url);
  if (!options.allowPrivate && isIP(host) !== 0 && isPrivateAddress(host)) {
    return Promise.reject(notAllowed(host, 'is not a public address'));
  }
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const request = send(
      url,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        signal: options.signal,
        // A new connection per request: its address is the one just checked, never a pooled socket's.
        agent: false,
        ...(options.allowPrivate ? {} : { lookup: publicLookup }),
      },
      (response) => {
        response.on('error', () => undefined);
        response.resume();
        resolve({ status: response.statusCode ?? 0, statusText: response.statusMessage ?? '' });
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}
