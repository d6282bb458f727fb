/**
 * The broker `fleetd server` runs itself (aedes, MQTT 3.1.1) so MQTT needs no set-up. It authenticates
 * every connection against the store (username = device id, password = the device credential, client id =
 * the device id or `<device id>/anything`, so one device cannot take over another's session; ids never
 * contain `/`) and holds each device to its own topics. The bridge logs in with a secret made at start and kept in memory only.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import { FleetError } from '../core/errors.js';
import { secretMatches, splitDeviceCredential } from '../registry/credentials.js';
import type { Store } from '../store/store.js';
import type { Topics } from './topics.js';

export interface EmbeddedBroker {
  /** mqtt://host:port devices connect to. */
  url: string;
  port: number;
  /** The bridge's own login. */
  bridgeLogin: { username: string; password: string };
  close(): Promise<void>;
}

/** The port is taken (by another broker, often): the caller decides whether that is fatal. */
export class BrokerPortInUse extends FleetError {
  constructor(readonly port: number) {
    super(
      'CONFLICT',
      `MQTT port ${port} is already in use: choose another with --mqtt-port, or bridge to the broker there with --mqtt URL`,
    );
  }
}

type Identity = { kind: 'bridge' } | { kind: 'device'; deviceId: string };

function refusal(message: string, returnCode: number): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

const BAD_LOGIN = 4;
const IDENTIFIER_REJECTED = 2;

export async function startEmbeddedBroker(options: {
  store: Store;
  topics: Topics;
  host: string;
  port: number;
}): Promise<EmbeddedBroker> {
  const bridgeLogin = { username: 'fleetd-bridge', password: randomBytes(32).toString('base64url') };
  const bridgeSecret = Buffer.from(bridgeLogin.password);
  const who = new WeakMap<Client, Identity>();

  const broker = await Aedes.createBroker({
    heartbeatInterval: 600_000,
    drainTimeout: 30_000,
    authenticate(client, username, password, done) {
      const given = password ?? Buffer.alloc(0);
      if (
        username === bridgeLogin.username &&
        given.length === bridgeSecret.length &&
        timingSafeEqual(given, bridgeSecret)
      ) {
        who.set(client, { kind: 'bridge' });
        return done(null, true);
      }
      const parts = splitDeviceCredential(given.toString('utf8'));
      if (!parts || parts.deviceId !== username) {
        return done(refusal('username must be the device id, password its credential', BAD_LOGIN), false);
      }
      if (client.id !== parts.deviceId && !client.id.startsWith(`${parts.deviceId}/`)) {
        return done(
          refusal('the client id must be the device id, or start with "<device id>/"', IDENTIFIER_REJECTED),
          false,
        );
      }
      options.store.credentialHash(parts.deviceId).then(
        (stored) => {
          if (!stored || !secretMatches(parts.secret, stored)) {
            return done(refusal('the device credential is unknown, revoked or wrong', BAD_LOGIN), false);
          }
          who.set(client, { kind: 'device', deviceId: parts.deviceId });
          done(null, true);
        },
        () => done(refusal('the registry is unavailable', 3), false),
      );
    },
    authorizePublish(client, packet, done) {
      const identity = client ? who.get(client) : undefined;
      if (identity?.kind === 'bridge' && !packet.topic.startsWith('$')) return done(null);
      if (identity?.kind === 'device' && options.topics.deviceMayPublish(identity.deviceId, packet.topic)) {
        packet.retain = false; // a heartbeat is not state to replay to the next subscriber
        return done(null);
      }
      // MQTT 3.1.1 cannot refuse one PUBLISH: the broker closes the connection.
      done(new Error(`publishing to ${packet.topic} is not allowed`));
    },
    authorizeSubscribe(client, subscription, done) {
      const identity = who.get(client);
      const allowed =
        identity?.kind === 'bridge' ||
        (identity?.kind === 'device' &&
          options.topics.deviceMaySubscribe(identity.deviceId, subscription.topic));
      // A refused filter is answered with the failure code; the connection stays.
      done(null, allowed ? subscription : null);
    },
  });
  // Errors of single clients (a refused publish, a reset socket) are theirs, not the server's.
  broker.on('clientError', () => undefined);
  broker.on('connectionError', () => undefined);

  const server: Server = createServer(broker.handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'EADDRINUSE' ? new BrokerPortInUse(options.port) : error),
    );
    server.listen(options.port, options.host, () => resolve());
  }).catch(async (error: unknown) => {
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    throw error;
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const host = options.host === '0.0.0.0' || options.host === '::' ? '127.0.0.1' : options.host;
  return {
    url: `mqtt://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    bridgeLogin,
    async close() {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
