/** Public: the FleetD CA certificate, for a browser, a proxy or a device to trust. No token: it is no secret. */
import { readFile } from 'node:fs/promises';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { FleetError } from '../../core/errors.js';
import { withErrors } from '../../protocol/common.js';

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
