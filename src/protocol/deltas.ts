/** Binary deltas as the device protocol offers them and as the operator API lists them (docs/delta-updates.md). */
import { type Static, Type } from 'typebox';

/** Next to an offer's full artifact: a smaller download for a device running the delta's source. */
export const DeltaOffer = Type.Object({
  url: Type.String({ description: 'Where to download the delta (relative to the server)' }),
  tool: Type.String({ description: 'xdelta3 or zstd: what applies it to the running image' }),
  size: Type.Integer(),
  sha256: Type.String(),
  source_sha256: Type.String({ description: 'The image the delta applies to' }),
  manifest: Type.String({ description: 'The signed delta manifest: verify the signature over these bytes' }),
  signature: Type.String({
    description: 'Base64 Ed25519 signature of the delta manifest, by the release key',
  }),
});
export type DeltaOfferJson = Static<typeof DeltaOffer>;

export const DeltaJson = Type.Object({
  id: Type.String(),
  source_release_id: Type.String(),
  source_version: Type.String(),
  target_release_id: Type.String(),
  tool: Type.String(),
  size: Type.Integer(),
  sha256: Type.String(),
  target_size: Type.Integer({ description: 'The full image, for comparison' }),
  build_ms: Type.Integer(),
  created_at: Type.String(),
});
export type DeltaJson = Static<typeof DeltaJson>;

export const DeltaList = Type.Object({ deltas: Type.Array(DeltaJson) });
export type DeltaListJson = Static<typeof DeltaList>;

export const deltaDownloadPath = (sha256: string) => `/api/device/v1/deltas/${sha256}`;
