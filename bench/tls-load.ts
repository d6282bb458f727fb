/**
 * Load for the TLS benchmark. autocannon gives every connection the same client certificate, so the devices are
 * driven here with node:https (node:http for the plain side): one keep-alive agent per device, with the
 * device's own certificate and key and the FleetD CA, whose session cache resumes the TLS session when the
 * device connects again. The plain side runs the same loop, so the two differ only in the transport.
 */
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { createSecureContext, TLSSocket } from 'node:tls';
import type { BenchDevice } from './tls-fleet.js';

export type Transport = 'mtls' | 'bearer';

interface Answer {
  status: number;
  body: string;
}

const PATH = '/api/device/v1/heartbeat';
/** A request without an answer by then counts as an error, so a stuck server cannot hold the benchmark. */
const ANSWER_TIMEOUT_MS = 30_000;

/** A heartbeat body marked with a sequence number, so the store can be checked for the last one acknowledged. */
const heartbeatBody = (id: string, seq: number) =>
  JSON.stringify({
    device_id: id,
    firmware_version: '2.3.0',
    timestamp: new Date().toISOString(),
    battery: seq % 100,
    metrics: { seq },
  });

/** Counts the connections requests run on, and for TLS which of their handshakes resumed a session. */
class Connections {
  opened = 0;
  resumed = 0;
  /** The TLS versions negotiated (TLSv1.3 unless a side is configured otherwise). */
  readonly protocols = new Set<string>();
  private readonly seen = new WeakSet<Socket>();

  watch(socket: Socket): void {
    if (this.seen.has(socket)) return;
    this.seen.add(socket);
    this.opened++;
    if (!(socket instanceof TLSSocket)) return;
    const count = () => {
      if (socket.isSessionReused()) this.resumed++;
      const protocol = socket.getProtocol();
      if (protocol) this.protocols.add(protocol);
    };
    // A socket not seen before is new, so still handshaking (the handshake takes round trips).
    socket.once('secureConnect', count);
  }
}

function post(
  url: URL,
  transport: Transport,
  options: Record<string, unknown>,
  headers: Record<string, string>,
  body: string,
  onSocket: (socket: Socket) => void,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const send = transport === 'mtls' ? httpsRequest : httpRequest;
    const request = send(url, {
      ...options,
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    });
    request.on('socket', onSocket);
    request.on('error', reject);
    request.setTimeout(ANSWER_TIMEOUT_MS, () =>
      request.destroy(new Error(`no answer within ${ANSWER_TIMEOUT_MS / 1000} s`)),
    );
    request.on('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
      );
    });
    request.end(body);
  });
}

export interface PhaseResult {
  seconds: number;
  /** Heartbeats answered 200, and the time from sending each to its whole answer (ms). */
  acknowledged: number;
  latencies: number[];
  errors: number;
  firstFailure: string | undefined;
  connections: number;
  resumed: number;
  protocols: Set<string>;
}

const emptyPhase = (): PhaseResult => ({
  seconds: 0,
  acknowledged: 0,
  latencies: [],
  errors: 0,
  firstFailure: undefined,
  connections: 0,
  resumed: 0,
  protocols: new Set(),
});

/**
 * Devices that heartbeat without a pause over one keep-alive connection each, closing it (`connection: close`)
 * every `reconnectEvery` requests and connecting again. `lastAcked` keeps, per device, the sequence number of
 * its last acknowledged heartbeat (its requests are sequential, so that is the one the store must show).
 */
export class SteadyDevices {
  readonly lastAcked = new Map<string, number>();
  private readonly agents: Array<HttpAgent | HttpsAgent>;
  /** Kept across phases: a connection the warm-up opened is not a new one in the measured phase. */
  private readonly connections = new Connections();
  private readonly url: URL;
  private seq = 0;

  constructor(
    server: URL,
    private readonly transport: Transport,
    private readonly devices: BenchDevice[],
    caPem: string,
    private readonly reconnectEvery: number,
  ) {
    this.url = new URL(PATH, server);
    this.agents = devices.map((d) =>
      transport === 'mtls'
        ? new HttpsAgent({
            keepAlive: true,
            maxSockets: 1,
            // Made once, as a device loads its key once: not parsed again at each reconnection, and not part of
            // the agent's per-request connection name (cert, key and ca would be).
            secureContext: createSecureContext({ cert: d.certificatePem, key: d.privateKeyPem, ca: caPem }),
          })
        : new HttpAgent({ keepAlive: true, maxSockets: 1 }),
    );
  }

  /** Runs every device for `seconds`; the agents (and their sessions) carry over to the next phase. */
  async run(seconds: number): Promise<PhaseResult> {
    const result = emptyPhase();
    const connections = this.connections;
    const opened = connections.opened;
    const resumed = connections.resumed;
    const started = performance.now();
    const deadline = started + seconds * 1000;
    await Promise.all(
      this.devices.map(async (device, k) => {
        const agent = this.agents[k]!;
        const headers: Record<string, string> =
          this.transport === 'bearer' ? { authorization: `Bearer ${device.credential}` } : {};
        for (let n = 1; performance.now() < deadline; n++) {
          const seq = ++this.seq;
          const close = n % this.reconnectEvery === 0;
          const sent = performance.now();
          try {
            const answer = await post(
              this.url,
              this.transport,
              { agent },
              close ? { ...headers, connection: 'close' } : headers,
              heartbeatBody(device.id, seq),
              (socket) => connections.watch(socket),
            );
            if (answer.status === 200) {
              result.acknowledged++;
              result.latencies.push(performance.now() - sent);
              this.lastAcked.set(device.id, seq);
            } else {
              result.errors++;
              result.firstFailure ??= `${answer.status} ${answer.body.slice(0, 200)}`;
            }
          } catch (error) {
            result.errors++;
            result.firstFailure ??= (error as Error).message;
          }
        }
      }),
    );
    result.seconds = (performance.now() - started) / 1000;
    result.connections = connections.opened - opened;
    result.resumed = connections.resumed - resumed;
    for (const protocol of connections.protocols) result.protocols.add(protocol);
    return result;
  }

  close(): void {
    for (const agent of this.agents) agent.destroy();
  }
}

export interface StormResult extends PhaseResult {
  /** Devices whose heartbeat was answered 200. */
  acked: Set<string>;
}

/**
 * A fleet reconnecting at once: every device opens a new TLS connection with its own certificate, sends one
 * heartbeat and closes, at most `inFlight` at a time. With `sessions` (from an earlier storm) each device
 * offers its saved session; the sessions this storm received are kept in `saved` for the next one.
 */
export async function handshakeStorm(
  server: URL,
  devices: BenchDevice[],
  caPem: string,
  inFlight: number,
  sessions: Map<string, Buffer> | undefined,
  saved: Map<string, Buffer>,
): Promise<StormResult> {
  const result: StormResult = { ...emptyPhase(), acked: new Set() };
  const url = new URL(PATH, server);
  const connections = new Connections();
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < devices.length) {
      const device = devices[next++]!;
      const session = sessions?.get(device.id);
      const sent = performance.now();
      try {
        const answer = await post(
          url,
          'mtls',
          {
            // A connection of its own, not shared through an agent's pool or session cache.
            agent: false,
            cert: device.certificatePem,
            key: device.privateKeyPem,
            ca: caPem,
            ...(session ? { session } : {}),
          },
          { connection: 'close' },
          heartbeatBody(device.id, 0),
          (socket) => {
            connections.watch(socket);
            socket.on('session', (ticket: Buffer) => saved.set(device.id, ticket));
          },
        );
        if (answer.status === 200) {
          result.acknowledged++;
          result.acked.add(device.id);
          result.latencies.push(performance.now() - sent);
        } else {
          result.errors++;
          result.firstFailure ??= `${answer.status} ${answer.body.slice(0, 200)}`;
        }
      } catch (error) {
        result.errors++;
        result.firstFailure ??= (error as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, devices.length) }, worker));
  result.seconds = (performance.now() - started) / 1000;
  result.connections = connections.opened;
  result.resumed = connections.resumed;
  for (const protocol of connections.protocols) result.protocols.add(protocol);
  return result;
}
