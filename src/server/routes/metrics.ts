/**
 * GET /metrics in the Prometheus exposition format (docs/monitoring.md). Never open by default: the caller
 * presents the metrics token (`--metrics-token-file`) or an admin API token. `metrics.read` is the permission
 * name the access roles will grant it by.
 */
import type { FastifyInstance } from 'fastify';
import { FleetError } from '../../core/errors.js';
import { hashSecret, secretMatches } from '../../registry/credentials.js';
import { bearer } from '../auth.js';
import type { ServerContext } from '../context.js';

export const METRICS_PERMISSION = 'metrics.read';

export async function metricsRoutes(app: FastifyInstance, c: ServerContext): Promise<void> {
  const metrics = c.metrics;
  if (!metrics) return;
  app.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
    const token = bearer(request);
    if (!(c.metricsTokenHash !== undefined && secretMatches(token, c.metricsTokenHash))) {
      const operator = await c.store.findApiToken(hashSecret(token));
      if (!operator)
        throw new FleetError('UNAUTHENTICATED', 'the metrics token or API token is unknown or revoked');
      if (operator.role !== 'admin') {
        throw new FleetError(
          'FORBIDDEN',
          `reading metrics needs the "${METRICS_PERMISSION}" permission: use the metrics token or an admin token`,
        );
      }
    }
    const { contentType, body } = await metrics.exposition();
    return reply.header('content-type', contentType).header('cache-control', 'no-store').send(body);
  });
}
