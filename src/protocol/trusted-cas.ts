/** The operator API's trusted factory CAs: their JSON as the API and the CLI read it. Never a private key. */
import { type Static, Type } from 'typebox';
import { Tags } from './common.js';

export const TrustCaBody = Type.Object(
  {
    certificate: Type.String({
      minLength: 1,
      maxLength: 65_536,
      description: "The manufacturer's CA certificate (PEM, basicConstraints CA:TRUE)",
    }),
    name: Type.Optional(
      Type.String({ minLength: 1, maxLength: 64, description: "default: the CA's subject CN" }),
    ),
    tags: Type.Optional(Tags),
    hardware_from: Type.Optional(
      Type.String({
        maxLength: 200,
        description: 'Where the hardware type is read: "ou" (default) or "oid:<dotted OID>"',
      }),
    ),
    approve: Type.Optional(
      Type.Boolean({ description: "Devices it registers wait as pending for an operator's approval" }),
    ),
  },
  { additionalProperties: false },
);

export const TrustedCaJson = Type.Object({
  name: Type.String(),
  fingerprint: Type.String({ description: "SHA-256 of the CA certificate's DER, lowercase hex" }),
  subject: Type.String(),
  not_after: Type.String({ format: 'date-time' }),
  tags: Type.Record(Type.String(), Type.String()),
  hardware_from: Type.String(),
  approve: Type.Boolean(),
  added_at: Type.String({ format: 'date-time' }),
  removed_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

export type TrustCaBody = Static<typeof TrustCaBody>;
export type TrustedCaJson = Static<typeof TrustedCaJson>;
