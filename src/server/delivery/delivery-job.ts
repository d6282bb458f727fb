/** One update the server delivers itself, as the delivery worker hands it to a method (ssh-push, http-push). */
import type { Readable } from 'node:stream';
import type { DeviceUpdate, Release, UpdateAction } from '../../store/store.js';

export interface DeliveryJob {
  update: DeviceUpdate;
  release: Release;
  action: UpdateAction;
  /** The artifact's bytes, from the start. */
  open(): Promise<Readable>;
}

/**
 * Where a delivery has got to; the worker reports each step as an agent would (uploaded → installing →
 * verifying), so rollouts count, gate and time out agentless devices like the others.
 */
export type DeliveryPhase = 'uploaded' | 'installing' | 'verifying';
