/**
 * Who a hawkBit DDI request comes from (docs/hawkbit-ddi.md). `TargetToken <credential>` is the device's own
 * FleetD credential (issued with `fleetd devices credential`, stored hashed), which names its device, so it must
 * name the controller in the URL. `GatewayToken <enrollment token>` is the fleet's: the device it names is
 * registered on its first poll with that token, and from then on proved by a secret derived from the token and
 * its id, of which only the hash is stored, like any device credential.
 */
import type { FastifyRequest } from 'fastify';
import { FleetError } from '../core/errors.js';
import { hashSecret, secretMatches, splitDeviceCredential } from '../registry/credentials.js';
import type { PresentedHeartbeat } from '../store/store.js';
import { type ServerContext, timeContext } from './context.js';

export type DdiProof =
  | { kind: 'target'; deviceId: string; secret: string }
  | { kind: 'gateway'; deviceId: string; token: string };

const REFUSED = 'the TargetToken or GatewayToken is unknown, revoked or not this device';

/** The tag every device speaking DDI carries in the registry, so filters and listings can tell them apart. */
export const CLIENT_TAG = { client: 'swupdate' } as const;

/** What the request presents, checked against the controller id of its URL but not yet against the store. */
export function ddiProof(c: ServerContext, request: FastifyRequest, controllerId: string): DdiProof {
  if (c.deviceAuth === 'mtls') {
    throw new FleetError(
      'CERTIFICATE_REQUIRED',
      'this server accepts devices by client certificate only (--device-auth mtls): the DDI API is off',
    );
  }
  const match = /^(TargetToken|GatewayToken) (\S+)$/.exec(request.headers.authorization ?? '');
  if (!match) {
    throw new FleetError(
      'UNAUTHENTICATED',
      'missing "Authorization: TargetToken <token>" (or GatewayToken) header',
    );
  }
  const token = match[2]!;
  if (match[1] === 'GatewayToken') return { kind: 'gateway', deviceId: controllerId, token };
  const parts = splitDeviceCredential(token);
  if (!parts) throw new FleetError('UNAUTHENTICATED', REFUSED);
  if (parts.deviceId !== controllerId) {
    throw new FleetError('FORBIDDEN', `this TargetToken belongs to ${parts.deviceId}, not ${controllerId}`);
  }
  return { kind: 'target', deviceId: parts.deviceId, secret: parts.secret };
}

/** The secret a gateway-registered device is known by: never stored, only its hash. */
const gatewaySecret = (token: string, deviceId: string) => `ddi-gateway\n${token}\n${deviceId}`;

/** The hash the store compares with the device's: the heartbeat's proof. */
export function proofHash(proof: DdiProof): string {
  return hashSecret(proof.kind === 'target' ? proof.secret : gatewaySecret(proof.token, proof.deviceId));
}

/** Checks the proof against the store (for requests that are not a poll); returns the device id. */
export async function authenticateDdi(c: ServerContext, proof: DdiProof): Promise<string> {
  const stored = await c.store.credentialHash(proof.deviceId);
  const secret = proof.kind === 'target' ? proof.secret : gatewaySecret(proof.token, proof.deviceId);
  if (!stored || !secretMatches(secret, stored)) throw new FleetError('UNAUTHENTICATED', REFUSED);
  return proof.deviceId;
}

/** The poll's heartbeat, proved as the store checks it in the heartbeat's own write. */
export function ddiHeartbeat(proof: DdiProof): PresentedHeartbeat {
  return { credentialHash: proofHash(proof), heartbeat: { deviceId: proof.deviceId } };
}

/**
 * Registers the device a GatewayToken names, consuming one use of the enrollment token (refused as an enrollment
 * would be: unknown, revoked, used up or expired token; a device id enrolled already).
 */
export async function registerByGateway(
  c: ServerContext,
  proof: Extract<DdiProof, { kind: 'gateway' }>,
): Promise<void> {
  await c.store.enroll(
    {
      tokenHash: hashSecret(proof.token),
      credentialHash: proofHash(proof),
      device: { id: proof.deviceId, tags: { ...CLIENT_TAG } },
    },
    timeContext(c),
  );
}
