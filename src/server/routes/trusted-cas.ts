/** Operator API for factory CAs: trust one (its devices register on first contact), list them, untrust one. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { describeCertificate } from '../../pki/describe.js';
import { withErrors } from '../../protocol/common.js';
import { TrustCaBody, TrustedCaJson } from '../../protocol/trusted-cas.js';
import type { TrustedCa } from '../../store/store.js';
import { auditChange } from '../audit/audit-trail.js';
import { actorOf, operatorOf } from '../auth.js';
import type { ServerContext } from '../context.js';

function trustedCaJson(ca: TrustedCa) {
  const { issuer, notAfter } = describeCertificate(ca.certificatePem);
  return {
    name: ca.name,
    fingerprint: ca.fingerprint,
    // A CA is its own issuer: the subject.
    subject: issuer,
    not_after: notAfter.toISOString(),
    tags: ca.tags,
    hardware_from: ca.hardwareFrom,
    approve: ca.approve,
    added_at: new Date(ca.addedAt).toISOString(),
    removed_at: ca.removedAt === null ? null : new Date(ca.removedAt).toISOString(),
  };
}

export const trustedCaRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.post(
      '/pki/trusted-cas',
      {
        config: { permission: 'pki.write' },
        schema: {
          summary:
            "Trust a manufacturer's CA: devices with its certificates are accepted at once and register on first contact",
          tags: ['pki'],
          body: TrustCaBody,
          response: withErrors({ 201: TrustedCaJson }),
        },
      },
      async (request, reply) => {
        const b = request.body;
        const ca = await c.factoryCas.trust(
          {
            certificatePem: b.certificate,
            name: b.name,
            tags: b.tags,
            hardwareFrom: b.hardware_from,
            approve: b.approve,
          },
          actorOf(operatorOf(request)),
        );
        const shown = trustedCaJson(ca);
        auditChange(request, null, { name: shown.name, fingerprint: shown.fingerprint });
        return reply.status(201).send(shown);
      },
    );

    app.get(
      '/pki/trusted-cas',
      {
        config: { permission: 'devices.read' },
        schema: {
          summary: 'The factory CAs trusted now',
          tags: ['pki'],
          response: withErrors({ 200: Type.Object({ trusted_cas: Type.Array(TrustedCaJson) }) }),
        },
      },
      async () => ({ trusted_cas: (await c.factoryCas.list()).map(trustedCaJson) }),
    );

    app.delete(
      '/pki/trusted-cas/:name',
      {
        config: { permission: 'pki.write' },
        schema: {
          summary: 'Stop trusting a factory CA: its certificates are refused from the next connection on',
          tags: ['pki'],
          params: Type.Object({ name: Type.String({ maxLength: 64 }) }),
          response: withErrors({ 200: TrustedCaJson }),
        },
      },
      async (request) => {
        const ca = await c.factoryCas.untrust(request.params.name, actorOf(operatorOf(request)));
        const shown = trustedCaJson(ca);
        auditChange(
          request,
          { fingerprint: shown.fingerprint, removed_at: null },
          { fingerprint: shown.fingerprint, removed_at: shown.removed_at },
        );
        return shown;
      },
    );
  };
