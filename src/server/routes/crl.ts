/**
 * Public, without authentication: the CRL of the FleetD CA, for proxies and brokers that check
 * client certificates themselves. FleetD's own listeners ask the store on every request instead.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { withErrors } from '../../protocol/common.js';
import type { ServerContext } from '../context.js';

/** The DER inside a PEM block (its base64 body). */
const pemToDer = (pem: string) =>
  Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');

export const crlRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/crl',
      {
        schema: {
          summary:
            'The CRL of the FleetD CA: every revoked device certificate it issued (PEM, or DER with ?format=der)',
          tags: ['pki'],
          security: [],
          querystring: Type.Object(
            { format: Type.Optional(Type.Union([Type.Literal('pem'), Type.Literal('der')])) },
            { additionalProperties: false },
          ),
          response: withErrors({}),
        },
      },
      async (request, reply) => {
        const pem = await c.certificates.crl();
        reply.header('cache-control', 'no-cache');
        if (request.query.format === 'der') {
          return reply.type('application/pkix-crl').send(pemToDer(pem));
        }
        return reply.type('application/x-pem-file').send(pem);
      },
    );
  };
