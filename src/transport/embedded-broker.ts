/**
 * The broker `fleetd server` runs itself (aedes, MQTT 3.1.1) so MQTT needs no set-up: a plain listener
 * (1883) for devices with a credential, and with the server's TLS a TLS listener (8883, TLS 1.2 or newer)
 * that asks every client for a certificate signed by the FleetD CA. `deviceAuth: 'mtls'` leaves the plain
 * listener closed and makes the certificate a must. Who may log in and publish where is broker-access.ts.
 * The bridge reaches the broker through an in-process link, never a socket.
 */
import { createServer as createTcpServer, type Server } from 'node:net';
import type { Duplex } from 'node:stream';
import { createServer as createTlsServer, type TLSSocket, type Server as TlsServer } from 'node:tls';
import { Aedes } from 'aedes';
import type { Clock } from '../core/clock.js';
import { FleetError } from '../core/errors.js';
import type { Store } from '../store/store.js';
import type { TransportLog } from './bridge.js';
import { brokerAccess, type DeviceAuthMode } from './broker-access.js';
import { inProcessLink } from './in-process-link.js';
import type { Topics } from './topics.js';

/** The server's certificate and key, and the CAs whose client certificates name devices (PEM text). */
export interface BrokerTls {
  certificatePem: string;
  privateKeyPem: string;
  caPems: string[];
}

export interface EmbeddedBroker {
  /** mqtt://host:port of the plain listener; undefined when it is closed (`deviceAuth: 'mtls'`). */
  url: string | undefined;
  /** mqtts://host:port of the TLS listener; undefined without TLS. */
  tlsUrl: string | undefined;
  /** A fresh connection for the bridge, inside the process. */
  connectBridge(): Duplex;
  /**
   * New TLS material (a renewed server certificate, client CAs added or removed) for the next handshakes;
   * connections already open keep theirs.
   */
  setTls(tls: BrokerTls): void;
  close(): Promise<void>;
}

/** The port is taken (by another broker, often): the caller decides whether that is fatal. */
export class BrokerPortInUse extends FleetError {
  constructor(
    readonly port: number,
    flag = '--mqtt-port',
  ) {
    super(
      'CONFLICT',
      `MQTT port ${port} is already in use: choose another with ${flag}, or bridge to the broker there with --mqtt URL`,
    );
  }
}

export interface EmbeddedBrokerOptions {
  store: Store;
  topics: Topics;
  host: string;
  /** The plain listener's port (0: any free one). */
  port: number;
  /** With TLS: the TLS listener's port (0: any free one). */
  tlsPort: number;
  tls: BrokerTls | undefined;
  deviceAuth: DeviceAuthMode;
  clock: Clock;
  log: TransportLog;
}

export async function startEmbeddedBroker(o: EmbeddedBrokerOptions): Promise<EmbeddedBroker> {
  if (o.deviceAuth === 'mtls' && !o.tls) {
    throw new FleetError('VALIDATION', 'device authentication by certificate only (mtls) needs TLS');
  }
  const bridgeEnds = new WeakSet<object>();
  const broker = await Aedes.createBroker({
    heartbeatInterval: 600_000,
    drainTimeout: 30_000,
    ...brokerAccess({
      ...o,
      isBridge: (conn) => typeof conn === 'object' && conn !== null && bridgeEnds.has(conn),
    }),
  });
  // Errors of single clients (a refused publish, a reset socket) are theirs, not the server's.
  broker.on('clientError', () => undefined);
  broker.on('connectionError', () => undefined);

  const servers: Server[] = [];
  const closeAll = async () => {
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  };
  let secure: TlsServer | undefined;
  const host = o.host === '0.0.0.0' || o.host === '::' ? '127.0.0.1' : o.host;
  const at = (scheme: string, port: number) =>
    `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  try {
    let url: string | undefined;
    let tlsUrl: string | undefined;
    if (o.deviceAuth !== 'mtls') {
      const plain = createTcpServer(broker.handle);
      servers.push(plain);
      url = at('mqtt', await listen(plain, o.host, o.port, '--mqtt-port'));
    }
    if (o.tls) {
      secure = createTlsServer(
        {
          ...secureContext(o.tls),
          minVersion: 'TLSv1.2',
          requestCert: true,
          // With bearer credentials allowed a device may come without a certificate; one that shows a
          // certificate the CA did not sign (or an expired one) is still refused, at CONNECT (broker-access.ts).
          rejectUnauthorized: o.deviceAuth === 'mtls',
        },
        (socket: TLSSocket) => broker.handle(socket),
      );
      secure.on('tlsClientError', (error: Error & { code?: string }, socket: TLSSocket) =>
        o.log.warn(
          { remote: socket.remoteAddress, reason: error.code ?? error.message },
          'MQTT TLS handshake refused',
        ),
      );
      servers.push(secure);
      tlsUrl = at('mqtts', await listen(secure, o.host, o.tlsPort, '--mqtt-tls-port'));
    }
    return {
      url,
      tlsUrl,
      connectBridge() {
        const [bridgeEnd, brokerEnd] = inProcessLink();
        bridgeEnds.add(brokerEnd);
        broker.handle(brokerEnd);
        return bridgeEnd;
      },
      setTls(tls) {
        secure?.setSecureContext({ ...secureContext(tls), minVersion: 'TLSv1.2' });
      },
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

function secureContext(tls: BrokerTls) {
  return { cert: tls.certificatePem, key: tls.privateKeyPem, ca: tls.caPems };
}

function listen(server: Server, host: string, port: number, flag: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'EADDRINUSE' ? new BrokerPortInUse(port, flag) : error),
    );
    server.listen(port, host, () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : port);
    });
  });
}
