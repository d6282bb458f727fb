/** The operator API's releases and device updates: their JSON as the API, the CLI and the dashboard read it. */
import { type Static, Type } from 'typebox';

export const ReleaseJson = Type.Object({
  id: Type.String(),
  name: Type.String(),
  version: Type.String(),
  type: Type.String(),
  hardware: Type.Array(Type.String()),
  size: Type.Integer(),
  sha256: Type.String(),
  key_id: Type.String(),
  allow_downgrade: Type.Boolean(),
  created_at: Type.String(),
  manifest: Type.String(),
  signature: Type.String(),
  variants: Type.Optional(
    Type.Array(
      Type.Object({
        client: Type.String({
          description: 'The update client it is for: swupdate (.swu) or mender (.mender)',
        }),
        size: Type.Integer(),
        sha256: Type.String(),
        created_at: Type.String(),
      }),
      {
        description:
          "The release's files for the device update clients its own type is not for (docs/clients/)",
      },
    ),
  ),
});
export type ReleaseJson = Static<typeof ReleaseJson>;

export const UpdateJson = Type.Object({
  id: Type.String(),
  device_id: Type.String(),
  release_id: Type.String(),
  rollout_id: Type.Union([Type.String(), Type.Null()]),
  phase: Type.Integer({ description: 'The rollout phase (or rolling batch) of this device' }),
  purpose: Type.String({ description: 'update, switch (blue-green) or rollback' }),
  state: Type.String(),
  action: Type.String(),
  progress: Type.Union([Type.Integer(), Type.Null()]),
  error: Type.Union([Type.String(), Type.Null()]),
  attempts: Type.Integer(),
  from_version: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String(),
  updated_at: Type.String(),
  finished_at: Type.Union([Type.String(), Type.Null()]),
});
export type UpdateJson = Static<typeof UpdateJson>;

/** What a scrub of the stored artifacts found (`POST /artifacts/verify`). */
export const VerifyReport = Type.Object({
  checked: Type.Integer({ description: 'Blobs re-hashed' }),
  bytes: Type.Integer({ description: 'Bytes read' }),
  damaged: Type.Array(
    Type.Object({
      sha256: Type.String(),
      size: Type.Integer(),
      releases: Type.Array(Type.String(), { description: 'name@version of each release using it' }),
      variants: Type.Optional(
        Type.Array(Type.Object({ release: Type.String(), client: Type.String() }), {
          description: 'Each release variant whose file it is: its release (name@version) and update client',
        }),
      ),
      problem: Type.Union([Type.Literal('missing'), Type.Literal('altered')]),
      found_size: Type.Integer(),
      found_sha256: Type.Optional(Type.String()),
    }),
  ),
});
export type VerifyReportJson = Static<typeof VerifyReport>;
