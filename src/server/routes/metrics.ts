/**
 * GET /metrics in the Prometheus exposition format (docs/monitoring.md). Never open by default: the caller
 * presents the metrics token (`--metrics-token-file`) or an API token whose role has `metrics.read` and no
 * device scope. Outside the operator API's access hook: Prometheus sends the token, nothing else.
 */
import type { FastifyInstance } from 'fastify';
import { FleetError } from '../../core/errors.js';
import type { Permission } from '../../core/permissions.js';
import { hashSecret, secretMatches } from '../../registry/credentials.js';
import { bearer } from '../auth.js';
import type { ServerContext } from '../context.js';
import { principalOfToken } from '../principal.js';

export const METRICS_PERMISSION: Permission = 'metrics.read';

export async function metricsRoutes(app: FastifyInstance, c: ServerContext): Promise<void> {
  const metrics = c.metrics;
  if (!metrics) return;
  app.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
    const token = bearer(request);
    if (!(c.metricsTokenHash !== undefined && secretMatches(token, c.metricsTokenHash))) {
      const stored = await c.store.principals.findToken(hashSecret(token));
      if (!stored)
        throw new FleetError('UNAUTHENTICATED', 'the metrics token or API token is unknown or revoked');
      const principal = await principalOfToken(c.store, stored, c.clock);
      // Fleet-wide figures: a principal limited to some devices must not read them.
      if (!principal.permissions.has(METRICS_PERMISSION) || principal.scope !== null) {
        throw new FleetError(
          'FORBIDDEN',
          `reading metrics needs the "${METRICS_PERMISSION}" permission and no device scope (role ${principal.role}): use the metrics token or such an API token`,
        );
      }
    }
    const { contentType, body } = await metrics.exposition();
    return reply.header('content-type', contentType).header('cache-control', 'no-store').send(body);
  });
}
