/** The blob a device of one update client is given of a release: the release's own or its variant's (core/release-variants.ts). */
import { fileForClient, type VariantClient } from '../core/release-variants.js';
import type { Release } from '../store/store.js';
import type { ServerContext } from './context.js';

export type ClientFile =
  | { kind: 'release' | 'variant'; sha256: string; size: number }
  | { kind: 'missing'; reason: string };

export async function clientFile(
  c: ServerContext,
  client: VariantClient,
  release: Release,
): Promise<ClientFile> {
  const choice = fileForClient(client, release, await c.store.variants.of([release.id]));
  if (choice.kind === 'missing') return choice;
  const file = choice.kind === 'variant' ? choice.variant : release;
  return { kind: choice.kind, sha256: file.sha256, size: file.size };
}
