/**
 * Public PKI information, without authentication: the FleetD CA certificate (for a browser, a proxy or a device
 * to trust; no secret) and its CRL, for proxies and brokers that check client certificates themselves.
 * FleetD's own listeners ask the store on every request instead.
 */
import { readFile } from 'node:fs/promises';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { FleetError } from '../../core/errors.js';
import { withErrors } from '../../protocol/common.js';
import type { ServerContext } from '../context.js';

export const pkiRoutes =
  (caCertificateFile: string | undefined): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/ca',
      {
        schema: {
          summary: 'The FleetD CA certificate (PEM): trust it to reach this server over TLS',
          tags: ['pki'],
          security: [],
          response: withErrors({ 200: Type.String({ description: 'PEM certificate' }) }),
        },
      },
      async (_request, reply) => {
        // Read on each request: the CA may be made after the server starts (first device enrollment).
        const pem = caCertificateFile
          ? await readFile(caCertificateFile, 'utf8').catch((error: NodeJS.ErrnoException) => {
              if (error.code === 'ENOENT') return undefined;
              throw error;
            })
          : undefined;
        if (pem === undefined) throw new FleetError('NOT_FOUND', 'this server has no FleetD CA yet');
        return reply.type('application/x-pem-file').send(pem);
      },
    );
  };

/** The DER inside a PEM block (its base64 body). */
const pemToDer = (pem: string) =>
  Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');

export const crlRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/pki/crl',
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
