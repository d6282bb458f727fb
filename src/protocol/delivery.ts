/** Agentless delivery settings as the operator API takes and shows them (docs/agentless.md). */
import { type Static, Type } from 'typebox';

export const DeliveryJson = Type.Object(
  {
    method: Type.Union([Type.Literal('ssh'), Type.Literal('http_push')]),
    host: Type.Optional(Type.String({ maxLength: 253, description: 'ssh: the device’s address' })),
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, description: 'ssh: default 22' })),
    user: Type.Optional(Type.String({ maxLength: 32 })),
    host_key: Type.Optional(
      Type.String({
        maxLength: 8192,
        description:
          'ssh: the pinned host key ("ssh-ed25519 AAAA…", as ssh-keyscan prints it) or its SHA256: fingerprint',
      }),
    ),
    install_command: Type.Optional(
      Type.String({ maxLength: 4096, description: 'ssh: run with $FLEETD_ARTIFACT set; exit 0 = installed' }),
    ),
    health_command: Type.Optional(Type.Union([Type.String({ maxLength: 4096 }), Type.Null()])),
    upload_dir: Type.Optional(Type.String({ maxLength: 1024, description: 'ssh: default /tmp' })),
    url: Type.Optional(
      Type.String({ maxLength: 2048, description: 'http_push: where the artifact is POSTed' }),
    ),
  },
  { additionalProperties: false },
);
export type DeliveryBody = Static<typeof DeliveryJson>;

export const DeviceDeliveryReply = Type.Object({
  device_id: Type.String(),
  delivery: DeliveryJson,
  updated_at: Type.String(),
});

export const DeliveryKeyReply = Type.Object({
  public_key: Type.String({
    description: 'Add to authorized_keys of the user each SSH device is delivered as',
  }),
});
