/** The server's delta builder, from its options: the tool, how many builds at once, the key to sign with. */
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { FsBlobStore } from '../artifacts/blob-store.js';
import { DeltaBuilder } from '../artifacts/delta-builder.js';
import type { Clock } from '../core/clock.js';
import { DEFAULT_DELTA_TOOL, type DeltaTool } from '../core/delta.js';
import type { Store } from '../store/store.js';
import type { Keyring } from './keyring.js';

export interface DeltaOptions {
  deltaTool?: DeltaTool | 'off';
  deltaConcurrency?: number;
}

export function deltaBuilder(
  options: DeltaOptions,
  d: {
    store: Store;
    blobs: FsBlobStore;
    clock: Clock;
    keyring: Keyring;
    dataDir: string;
    log: () => FastifyInstance['log'];
  },
): DeltaBuilder | undefined {
  const tool = options.deltaTool ?? DEFAULT_DELTA_TOOL;
  if (tool === 'off') return undefined;
  return new DeltaBuilder({
    store: d.store,
    blobs: d.blobs,
    clock: d.clock,
    log: { info: (o, m) => d.log().info(o, m), warn: (o, m) => d.log().warn(o, m) },
    workDir: join(d.dataDir, 'delta-work'),
    sign: d.keyring.canSign ? (text) => d.keyring.sign(text) : undefined,
    tool,
    ...(options.deltaConcurrency === undefined ? {} : { concurrency: options.deltaConcurrency }),
  });
}
