/** The Fastify application: device API, operator API, OpenAPI document. No listening here: see serve.ts. */
import type { ServerOptions as HttpsOptions } from 'node:https';
import cookie from '@fastify/cookie';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyInstance, LogController } from 'fastify';
import { DEFAULT_LOCKOUT_POLICY, DEFAULT_SESSION_POLICY } from '../core/sign-in-policy.js';
import { ErrorReply } from '../protocol/common.js';
import { DeviceJson } from '../protocol/operator-api.js';
import { type AbuseLimits, installAbuseLimits } from './abuse/abuse-limits.js';
import { installAccessControl } from './access.js';
import { auditOperatorChanges, watchFailedAuthentication } from './audit/audit-trail.js';
import { AuthFailureWatch, type AuthFailureWatchOptions } from './audit/auth-failure-watch.js';
import type { ServerContext } from './context.js';
import { serveDashboard } from './dashboard.js';
import { installErrorHandling } from './errors.js';
import { installProtocolErrors, protocolOptions } from './protocol-errors.js';
import { alertRoutes } from './routes/alerts.js';
import { artifactRoutes } from './routes/artifacts.js';
import { auditRoutes } from './routes/audit.js';
import { cacheRoutes } from './routes/cache.js';
import { commandRoutes, deviceCommandApi } from './routes/commands.js';
import { configRoutes, deviceConfigApi } from './routes/config.js';
import { configRolloutRoutes } from './routes/config-rollouts.js';
import { connectivityRoutes } from './routes/connectivity.js';
import { crlRoutes } from './routes/crl.js';
import { DEFAULT_DDI_TENANT, ddiRoutes } from './routes/ddi.js';
import { deliveryRoutes } from './routes/delivery.js';
import { deltaRoutes, deviceDeltaRoutes } from './routes/deltas.js';
import { deviceApi } from './routes/device-api.js';
import { deviceTagRoutes } from './routes/device-tags.js';
import { deviceRoutes } from './routes/devices.js';
import { directorDeviceRoutes, directorOperatorRoutes } from './routes/director.js';
import { eventStreamRoutes } from './routes/event-stream.js';
import { fleetRoutes } from './routes/fleet.js';
import { groupRoutes } from './routes/groups.js';
import { menderRoutes } from './routes/mender.js';
import { metricsRoutes } from './routes/metrics.js';
import { oidcRoutes } from './routes/oidc.js';
import { pkiRoutes } from './routes/pki.js';
import { principalRoutes } from './routes/principals.js';
import { recentEventRoutes } from './routes/recent-events.js';
import { releaseVariantRoutes } from './routes/release-variants.js';
import { rolloutRoutes } from './routes/rollouts.js';
import { sessionRoutes, signInRoutes } from './routes/sessions.js';
import { deviceTelemetryApi, telemetryRoutes } from './routes/telemetry.js';
import { trustedCaRoutes } from './routes/trusted-cas.js';
import { tufDeviceRoutes, tufOperatorRoutes } from './routes/tuf.js';
import { tufMigrationDeviceRoutes, tufMigrationOperatorRoutes } from './routes/tuf-migration.js';
import { updateRoutes } from './routes/updates.js';
import { webhookRoutes } from './routes/webhooks.js';
import { deviceWindowApi, windowRoutes } from './routes/windows.js';
import { installSecurityHeaders } from './security-headers.js';
import { serializerCompiler } from './serialization.js';
import type { OidcSignIn } from './sessions/oidc-sign-in.js';
import type { SignInPolicies } from './sessions/password-sign-in.js';
import { StreamTickets } from './stream-tickets.js';
import { validatorCompiler } from './validation.js';

export interface AppOptions {
  logLevel?: string;
  /** Where log lines go (default stdout); tests read them to check what is logged. */
  logStream?: { write(line: string): void };
  version?: string;
  /** The built dashboard's folder (default `dist/web` of the package). */
  webRoot?: string;
  /** Serve HTTPS with these options (server/tls.ts); plain HTTP when unset. */
  https?: HttpsOptions;
  /** The FleetD CA certificate, published at /api/v1/pki/ca once it exists. */
  caCertificateFile?: string;
  /** Rate limits on enrollment, the device API and failed authentication (default: DEFAULT_ABUSE_LIMITS). */
  abuseLimits?: AbuseLimits;
  /** How failed authentication is recorded in bounded amounts (default: DEFAULT_AUTH_FAILURE_WATCH). */
  authFailureWatch?: AuthFailureWatchOptions;
  /** Dashboard session lifetimes and the sign-in lock-out (default: DEFAULT_SESSION_POLICY, DEFAULT_LOCKOUT_POLICY). */
  signIn?: SignInPolicies;
  /** Dashboard sign-in with OpenID Connect, when configured (docs/access.md). */
  oidc?: OidcSignIn;
}

export async function buildApp(context: ServerContext, options: AppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: {
      level: options.logLevel ?? 'info',
      ...(options.logStream === undefined ? {} : { stream: options.logStream }),
    },
    // Per-request log lines would cost more than the heartbeat itself; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
    // Plain JSON.parse (secure-json-parse costs more than the heartbeat's own work): every body is then
    // checked against a schema that refuses unknown keys, `__proto__` and `constructor` included.
    onProtoPoisoning: 'ignore',
    onConstructorPoisoning: 'ignore',
    ajv: { customOptions: { coerceTypes: false } },
    ...protocolOptions,
    // The https server is an http server to every route; only serve.ts and tls.ts reach for its TLS side.
    ...((options.https ? { https: options.https } : {}) as object),
  }).withTypeProvider<TypeBoxTypeProvider>();

  const shared = [ErrorReply, DeviceJson];
  for (const schema of shared) app.addSchema(schema);
  app.setValidatorCompiler(validatorCompiler(shared));
  app.setSerializerCompiler(serializerCompiler(shared));
  installErrorHandling(app);
  installSecurityHeaders(app);
  installProtocolErrors(app);
  context.metrics?.instrument(app);

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'FleetD API',
        version: options.version ?? '0',
        description:
          'Operator API under /api/v1 (API token), device API under /api/device/v1 (device credential).',
      },
      components: {
        securitySchemes: {
          apiToken: { type: 'http', scheme: 'bearer', description: 'Operator API token' },
          deviceCredential: { type: 'http', scheme: 'bearer', description: 'A device credential' },
        },
      },
      security: [{ apiToken: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  const guard = await installAbuseLimits(app, context.clock, options.abuseLimits, context.store.rateCounts);
  const failures = new AuthFailureWatch(context.store, context.clock, app.log, options.authFailureWatch);
  app.decorate('authFailures', failures);
  watchFailedAuthentication(app, failures);

  app.get('/healthz', { schema: { hide: true } }, async () => ({ ok: true }));
  await metricsRoutes(app, context);

  await app.register(deviceApi(context), { prefix: '/api/device/v1' });
  await app.register(deviceCommandApi(context), { prefix: '/api/device/v1' });
  await app.register(deviceDeltaRoutes(context), { prefix: '/api/device/v1' });
  await app.register(deviceTelemetryApi(context), { prefix: '/api/device/v1' });
  await app.register(deviceWindowApi(context), { prefix: '/api/device/v1' });
  await app.register(deviceConfigApi(context), { prefix: '/api/device/v1' });
  // Public, beside the operator API and outside its authentication hook.
  await app.register(pkiRoutes(options.caCertificateFile), { prefix: '/api/v1/pki' });
  await app.register(crlRoutes(context), { prefix: '/api/v1/pki' });
  await app.register(tufDeviceRoutes(context), { prefix: '/api/device/v1/tuf' });
  await app.register(tufMigrationDeviceRoutes(context), { prefix: '/api/device/v1/tuf' });
  await app.register(directorDeviceRoutes(context), { prefix: '/api/device/v1/director' });
  await app.register(cacheRoutes(context));
  const tickets = new StreamTickets(context.clock);
  const signIn = options.signIn ?? { session: DEFAULT_SESSION_POLICY, lockout: DEFAULT_LOCKOUT_POLICY };
  await app.register(cookie);
  await app.register(signInRoutes(context, guard, signIn, options.oidc !== undefined), { prefix: '/api/v1' });
  if (options.oidc)
    await app.register(oidcRoutes(context, options.oidc, guard, signIn), { prefix: '/api/v1' });
  await app.register(
    async (operatorApi) => {
      operatorApi.decorateRequest('operator', null);
      installAccessControl(operatorApi, context, tickets, guard, signIn.session);
      auditOperatorChanges(operatorApi, context);
      await operatorApi.register(deviceRoutes(context));
      await operatorApi.register(fleetRoutes(context));
      await operatorApi.register(artifactRoutes(context));
      await operatorApi.register(updateRoutes(context));
      await operatorApi.register(rolloutRoutes(context));
      await operatorApi.register(eventStreamRoutes(context, tickets));
      await operatorApi.register(webhookRoutes(context));
      await operatorApi.register(recentEventRoutes(context));
      await operatorApi.register(trustedCaRoutes(context));
      await operatorApi.register(principalRoutes(context));
      await operatorApi.register(auditRoutes(context));
      await operatorApi.register(alertRoutes(context));
      await operatorApi.register(deviceTagRoutes(context));
      await operatorApi.register(commandRoutes(context));
      await operatorApi.register(deltaRoutes(context));
      await operatorApi.register(tufOperatorRoutes(context));
      await operatorApi.register(tufMigrationOperatorRoutes(context));
      await operatorApi.register(directorOperatorRoutes(context));
      await operatorApi.register(deliveryRoutes(context));
      await operatorApi.register(sessionRoutes(context));
      await operatorApi.register(telemetryRoutes(context));
      await operatorApi.register(groupRoutes(context));
      await operatorApi.register(windowRoutes(context));
      await operatorApi.register(connectivityRoutes(context));
      await operatorApi.register(configRoutes(context));
      await operatorApi.register(configRolloutRoutes(context));
      await operatorApi.register(releaseVariantRoutes(context));
    },
    { prefix: '/api/v1' },
  );
  const ddiTenant = context.ddiTenant ?? DEFAULT_DDI_TENANT;
  await app.register(ddiRoutes(context, ddiTenant), { prefix: `/${ddiTenant}/controller/v1` });
  if (context.menderTokenKey) await app.register(menderRoutes(context), { prefix: '/api/devices' });
  await serveDashboard(app, options.webRoot);
  return app;
}
