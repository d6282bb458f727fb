/**
 * Who may do what on the embedded broker: the aedes hooks that log a client in and hold it to its topics.
 *
 * A client is one of three: the bridge (known by its in-process link, no password); a device that logged
 * in with its id and credential; or a device that showed a client certificate on the TLS listener, which
 * is the device the certificate names (the registry maps the certificate's SHA-256 fingerprint to it).
 * A certificate device's messages are forwarded under `$fleetd/certified/{fingerprint}/` (topics.ts), so
 * the bridge authenticates each one by that certificate as the HTTP device API does (and so sees a
 * revocation at the next message); a credential device still carries its credential in each message. Refusals of certificates are logged and recorded as `mqtt.refused` events, with
 * the fingerprint and never a secret.
 */
import { createHash } from 'node:crypto';
import { TLSSocket } from 'node:tls';
import type { AedesOptions, AuthenticateError, Client } from 'aedes';
import type { Clock } from '../core/clock.js';
import { secretMatches, splitDeviceCredential } from '../registry/credentials.js';
import type { Store } from '../store/store.js';
import type { TransportLog } from './bridge.js';
import type { Topics } from './topics.js';

/** 'any': certificates and bearer credentials; 'mtls': certificates only. */
export type DeviceAuthMode = 'any' | 'mtls';

export interface BrokerAccessOptions {
  store: Store;
  topics: Topics;
  clock: Clock;
  log: TransportLog;
  deviceAuth: DeviceAuthMode;
  /** Whether a connection is the bridge's end of the in-process link. */
  isBridge(conn: unknown): boolean;
}

type Identity =
  | { kind: 'bridge' }
  | { kind: 'credential'; deviceId: string }
  | { kind: 'certificate'; deviceId: string; fingerprint: string };

/** CONNACK return codes of MQTT 3.1.1. */
const IDENTIFIER_REJECTED = 2;
const SERVER_UNAVAILABLE = 3;
const BAD_LOGIN = 4;
const NOT_AUTHORIZED = 5;

function refusal(message: string, returnCode: number): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

interface PresentedCertificate {
  fingerprint: string;
  /** Why the TLS layer did not accept it (expired, unknown CA, self-signed…); undefined when it did. */
  invalid: string | undefined;
}

/** The client certificate of a TLS connection; undefined for plain TCP or a client that showed none. */
export function presentedCertificate(conn: unknown): PresentedCertificate | undefined {
  if (!(conn instanceof TLSSocket)) return undefined;
  const peer = conn.getPeerCertificate();
  if (!peer?.raw) return undefined;
  return {
    fingerprint: createHash('sha256').update(peer.raw).digest('hex'),
    invalid: conn.authorized ? undefined : String(conn.authorizationError ?? 'not authorized'),
  };
}

/** One device per client id: the id itself, or `<id>/anything` for several connections of one device. */
function clientIdFits(clientId: string, deviceId: string): boolean {
  return clientId === deviceId || clientId.startsWith(`${deviceId}/`);
}

export function brokerAccess(
  o: BrokerAccessOptions,
): Pick<AedesOptions, 'authenticate' | 'authorizePublish' | 'authorizeSubscribe'> {
  const who = new WeakMap<Client, Identity>();

  const refuse = (
    what: { deviceId?: string | null; fingerprint?: string; clientId: string; topic?: string },
    reason: string,
  ) => {
    const data = {
      client_id: what.clientId,
      ...(what.fingerprint ? { certificate_sha256: what.fingerprint } : {}),
      ...(what.topic ? { topic: what.topic } : {}),
    };
    o.log.warn({ ...data, device_id: what.deviceId ?? undefined }, `MQTT refused: ${reason}`);
    o.store
      .appendEvents([
        {
          at: o.clock.now(),
          type: 'mqtt.refused',
          deviceId: what.deviceId ?? null,
          rolloutId: null,
          actor: null,
          reason,
          data,
        },
      ])
      .catch((error: unknown) => o.log.error({ err: error }, 'MQTT refusal not recorded'));
  };

  const byCertificate = async (
    client: Client,
    username: string | undefined,
    cert: PresentedCertificate,
  ): Promise<AuthenticateError | null> => {
    const seen = { clientId: client.id, fingerprint: cert.fingerprint };
    if (cert.invalid) {
      refuse(seen, `client certificate not accepted: ${cert.invalid}`);
      return refusal(`the client certificate is not valid: ${cert.invalid}`, NOT_AUTHORIZED);
    }
    const deviceId = await o.store.certificates.deviceOf(cert.fingerprint);
    if (!deviceId) {
      refuse(seen, 'certificate of no active device (unknown, revoked or decommissioned)');
      return refusal('the certificate names no active device', NOT_AUTHORIZED);
    }
    if ((username && username !== deviceId) || !clientIdFits(client.id, deviceId)) {
      refuse({ ...seen, deviceId }, `certificate of ${deviceId} with another device's username or client id`);
      return refusal(
        `this certificate is ${deviceId}'s: the username must be empty or ${deviceId}, the client id ${deviceId} or "${deviceId}/…"`,
        IDENTIFIER_REJECTED,
      );
    }
    who.set(client, { kind: 'certificate', deviceId, fingerprint: cert.fingerprint });
    return null;
  };

  const byCredential = async (
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
  ): Promise<AuthenticateError | null> => {
    if (o.deviceAuth === 'mtls') {
      refuse({ clientId: client.id }, 'no client certificate (devices log in by certificate only)');
      return refusal('this server takes devices by client certificate only', NOT_AUTHORIZED);
    }
    const parts = splitDeviceCredential((password ?? Buffer.alloc(0)).toString('utf8'));
    if (!parts || parts.deviceId !== username) {
      return refusal('username must be the device id, password its credential', BAD_LOGIN);
    }
    if (!clientIdFits(client.id, parts.deviceId)) {
      return refusal(
        'the client id must be the device id, or start with "<device id>/"',
        IDENTIFIER_REJECTED,
      );
    }
    const stored = await o.store.credentialHash(parts.deviceId);
    if (!stored || !secretMatches(parts.secret, stored)) {
      return refusal('the device credential is unknown, revoked or wrong', BAD_LOGIN);
    }
    who.set(client, { kind: 'credential', deviceId: parts.deviceId });
    return null;
  };

  return {
    authenticate(client, username, password, done) {
      if (o.isBridge(client.conn)) {
        who.set(client, { kind: 'bridge' });
        return done(null, true);
      }
      const cert = presentedCertificate(client.conn);
      const check = cert ? byCertificate(client, username, cert) : byCredential(client, username, password);
      check.then(
        (error) => (error ? done(error, false) : done(null, true)),
        (error: unknown) => {
          o.log.error({ err: error }, 'MQTT login could not be checked');
          done(refusal('the registry is unavailable', SERVER_UNAVAILABLE), false);
        },
      );
    },
    authorizePublish(client, packet, done) {
      const identity = client ? who.get(client) : undefined;
      // MQTT 3.1.1 cannot refuse one PUBLISH: an error closes the connection.
      const refused = () => done(new Error(`publishing to ${packet.topic} is not allowed`));
      if (identity?.kind === 'bridge') return packet.topic.startsWith('$') ? refused() : done(null);
      if (!identity || !o.topics.deviceMayPublish(identity.deviceId, packet.topic)) {
        if (identity?.kind === 'certificate') {
          const { deviceId, fingerprint } = identity;
          refuse(
            { deviceId, fingerprint, clientId: client!.id, topic: packet.topic },
            `certificate of ${deviceId} used on a topic that is not its own`,
          );
        }
        return refused();
      }
      packet.retain = false; // a heartbeat is not state to replay to the next subscriber
      // The bridge takes this topic as the broker's word on the certificate the message came with.
      if (identity.kind === 'certificate')
        packet.topic = o.topics.certified(packet.topic, identity.fingerprint);
      done(null);
    },
    authorizeSubscribe(client, subscription, done) {
      const identity = who.get(client);
      const allowed =
        identity?.kind === 'bridge' ||
        (identity !== undefined && o.topics.deviceMaySubscribe(identity.deviceId, subscription.topic));
      // A refused filter is answered with the failure code; the connection stays.
      done(null, allowed ? subscription : null);
    },
  };
}
