/** `fleetd server` */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { DEFAULT_THRESHOLDS } from '../core/device.js';
import { parseDuration } from '../core/duration.js';
import { FleetError } from '../core/errors.js';
import { EgressLimit } from '../server/egress-limit.js';
import { startServer } from '../server/serve.js';
import { oidcSettings } from '../server/sessions/oidc-settings.js';
import { signInPoliciesFromFlags } from '../server/sessions/sign-in-flags.js';
import { type SignedArtifactUrls, signedArtifactUrls } from '../server/signed-artifact-urls.js';
import { listenerBanner, type TlsSource } from '../server/tls.js';
import { mqttSettingsFromFlags } from '../transport/cli-flags.js';
import { CliError } from './client.js';

function port(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 65_535)
    throw new CliError(`--port: "${text}" is not a port number`);
  return n;
}

/** `--tls auto` or `--tls-cert` with `--tls-key`; nothing: plain HTTP (loopback only, unless --insecure-http). */
function tlsFromFlags(opts: {
  tls?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsName: string[];
}): TlsSource | undefined {
  if (opts.tls !== undefined && opts.tls !== 'auto') throw new CliError(`--tls: "${opts.tls}" must be auto`);
  if (opts.tls === 'auto' && (opts.tlsCert || opts.tlsKey))
    throw new CliError('--tls auto makes its own certificate: give it or --tls-cert and --tls-key, not both');
  if (opts.tlsName.length > 0 && opts.tls !== 'auto') throw new CliError('--tls-name goes with --tls auto');
  if (opts.tls === 'auto') return { kind: 'auto', extraNames: opts.tlsName };
  if (!opts.tlsCert !== !opts.tlsKey) throw new CliError('--tls-cert and --tls-key go together');
  return opts.tlsCert && opts.tlsKey
    ? { kind: 'files', certFile: opts.tlsCert, keyFile: opts.tlsKey }
    : undefined;
}

/** `--data` is the program's global option: the same folder the CLI reads the admin token from. */
export function registerServer(program: Command): void {
  program
    .command('server')
    .description('run the FleetD server (device API, operator API, OpenAPI at /docs)')
    .option('--port <n>', 'TCP port', process.env.FLEETD_PORT ?? '8080')
    .option('--host <addr>', 'address to listen on', process.env.FLEETD_HOST ?? '127.0.0.1')
    .option(
      '--db <url>',
      'postgres://… URL or SQLite file (default: <data>/fleetd.db)',
      process.env.FLEETD_DB,
    )
    .option(
      '--sync <mode>',
      'SQLite durability: normal (survives kill -9) or full (also power loss)',
      'normal',
    )
    .option('--heartbeat-interval <duration>', 'how often devices are asked to heartbeat', '5m')
    .option('--offline-after <duration>', 'silence after which a device is offline', '10m')
    .option('--abandoned-after <duration>', 'silence after which a device is abandoned', '30d')
    .option('--no-server-signing', 'never sign releases on the server: accept only manifests signed offline')
    .option('--trusted-key <file...>', 'public keys whose offline signatures are accepted')
    .option(
      '--artifact-offload <prefix>',
      'let nginx in front send artifact bytes (X-Accel-Redirect to this internal location)',
    )
    .option(
      '--mqtt <url>',
      'bridge devices over this external MQTT broker instead of the embedded one',
      process.env.FLEETD_MQTT,
    )
    .option(
      '--mqtt-port <n>',
      'port of the embedded MQTT broker (default 1883; if taken, MQTT is off with a warning)',
      process.env.FLEETD_MQTT_PORT,
    )
    .option('--mqtt-tls-port <n>', "the embedded broker's TLS port, with the server's TLS (default 8883)")
    .option('--mqtt-ca <file>', "the external broker's CA (--mqtt mqtts://…)")
    .option('--mqtt-cert <file>', "the server's client certificate for the external broker, with --mqtt-key")
    .option('--mqtt-key <file>', 'the private key of --mqtt-cert')
    .option('--no-mqtt', 'no MQTT: devices use HTTP only')
    .option(
      '--lease <duration>',
      'how long a replica holds its rollouts (and counts as live) without renewing them',
      '30s',
    )
    .option('--engine-interval <duration>', 'how often the rollout engine reconciles its rollouts', '1s')
    .option('--webhook-interval <duration>', 'how often due webhooks are looked for', '1s')
    .option('--webhook-timeout <duration>', 'how long a webhook receiver has to answer', '10s')
    .option(
      '--webhook-allow-private',
      'let webhooks target loopback, private, link-local and metadata addresses (default: public only)',
    )
    .option(
      '--delta-tool <tool>',
      'build binary deltas with xdelta3 or zstd, or off (docs/delta-updates.md)',
      'xdelta3',
    )
    .option(
      '--scrub-rate <MiB/s>',
      'average rate at which stored artifacts are re-hashed in the background (0: no scrub)',
      '4',
    )
    .option(
      '--retain-events <age>',
      'keep events this long (off: no age bound); see docs/operations.md',
      '90d',
    )
    .option('--retain-events-max <count>', 'keep at most this many events (besides those of open rollouts)')
    .option(
      '--retain-audit <age>',
      'keep audit log entries this long (off: for ever); see docs/audit.md',
      'off',
    )
    .option('--tls <mode>', 'auto: the FleetD CA in <data>/pki issues the certificate for the listen names')
    .option('--tls-cert <file>', 'TLS certificate (PEM, may hold its chain) for the HTTP listener')
    .option('--tls-key <file>', 'the private key of --tls-cert (PEM)')
    .option(
      '--tls-name <name>',
      'with --tls auto: another DNS name or address the server is reached by (repeatable)',
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .option('--insecure-http', 'serve plain HTTP on an address other than loopback (refused without it)')
    .option('--log-level <level>', 'fatal, error, warn, info, debug', process.env.FLEETD_LOG_LEVEL ?? 'info')
    .option(
      '--enrollment <mode>',
      'token: devices join with a token; approve: also without, once accepted',
      'token',
    )
    .option(
      '--device-auth <mode>',
      'any: devices by client certificate or credential; mtls: certificates only',
      'any',
    )
    .option(
      '--device-cert-validity <duration>',
      'how long a device certificate FleetD issues is valid',
      '90d',
    )
    .option(
      '--metrics-token-file <file>',
      'a file holding the token Prometheus presents for GET /metrics (an admin token works too)',
    )
    .option('--alert-rules <file>', 'alert rules (YAML, docs/alerts.md); reloaded on change or SIGHUP')
    .option(
      '--tuf-mirror <dir>',
      'keep a copy of the public TUF metadata in this folder, for a CDN or web server to serve (docs/signing.md)',
    )
    .option('--ddi-tenant <name>', 'the hawkBit tenant in the DDI API paths of SWUpdate devices', 'DEFAULT')
    .option('--mender-artifact-key <file...>', 'public keys (PEM) a signed Mender artifact must verify with')
    .option(
      '--delivery-key-passphrase-file <file>',
      'the passphrase of the SSH key agentless devices are reached with (default: generated in <data>/delivery)',
    )
    .option(
      '--artifact-base-url <origin>',
      'hand devices signed, expiring artifact links on this cache origin',
    )
    .option('--artifact-url-secret-file <file>', 'the secret artifact links are signed with (32+ characters)')
    .option('--artifact-url-form <form>', 'nginx (secure_link_md5) or hmac (HMAC-SHA256)', 'nginx')
    .option('--artifact-url-ttl <duration>', 'how long an artifact link lasts', '6h')
    .option(
      '--egress-cap <MBps>',
      'the most artifact bytes per second (MB/s) all downloads together may take',
    )
    .option('--oidc-issuer <url>', 'dashboard sign-in with OpenID Connect: the provider (docs/access.md)')
    .option('--oidc-client-id <id>', "FleetD's client id at the provider")
    .option(
      '--oidc-client-secret-file <file>',
      'a file holding the client secret (or env FLEETD_OIDC_CLIENT_SECRET)',
    )
    .option('--oidc-roles <file>', "the provider's groups mapped to roles and scopes (YAML)")
    .option('--session-lifetime <duration>', 'a dashboard session ends this long after sign-in (default 12h)')
    .option('--session-idle <duration>', 'a dashboard session unused this long ends (default 30m)')
    .option(
      '--lockout-failures <n>',
      'failed sign-ins of one name within --lockout-window that lock it (default 5)',
    )
    .option('--lockout-window <duration>', 'the window failed sign-ins are counted in (default 15m)')
    .option(
      '--lockout-time <duration>',
      'how long a locked name is refused, whatever the password (default 15m)',
    )
    .action(
      async (
        opts: Record<string, string> & {
          serverSigning: boolean;
          trustedKey?: string[];
          menderArtifactKey?: string[];
          mqtt?: string | false;
          webhookAllowPrivate?: boolean;
          tlsName: string[];
          insecureHttp?: boolean;
        },
      ) => {
        const tls = tlsFromFlags(opts);
        if (opts.artifactOffload !== undefined && !/^\/[\w/-]+$/.test(opts.artifactOffload)) {
          throw new CliError(
            `--artifact-offload: "${opts.artifactOffload}" must be a path such as /_fleetd_blobs`,
          );
        }
        if (opts.sync !== 'normal' && opts.sync !== 'full') {
          throw new CliError(`--sync: "${opts.sync}" must be normal or full`);
        }
        const thresholds = {
          offlineAfterMs: parseDuration(opts.offlineAfter ?? '', '--offline-after'),
          abandonedAfterMs: parseDuration(opts.abandonedAfter ?? '', '--abandoned-after'),
        };
        if (thresholds.abandonedAfterMs <= thresholds.offlineAfterMs) {
          throw new CliError('--abandoned-after must be longer than --offline-after');
        }
        const scrubRate = Number(opts.scrubRate);
        if (!Number.isFinite(scrubRate) || scrubRate < 0) {
          throw new CliError(`--scrub-rate: "${opts.scrubRate}" is not a number of MiB per second`);
        }
        const leaseMs = parseDuration(opts.lease!, '--lease');
        const engineIntervalMs = parseDuration(opts.engineInterval!, '--engine-interval');
        if (engineIntervalMs <= 0) throw new CliError('--engine-interval must be longer than 0');
        // A lease renewed on every tick must outlast a few of them, or a busy replica would lose its rollouts.
        if (leaseMs < 3 * engineIntervalMs) {
          throw new CliError('--lease must be at least three times --engine-interval');
        }
        const maxCount = opts.retainEventsMax === undefined ? null : Number(opts.retainEventsMax);
        if (maxCount !== null && (!Number.isInteger(maxCount) || maxCount < 1)) {
          throw new CliError(
            `--retain-events-max: "${opts.retainEventsMax}" is not a whole number of events, 1 or more`,
          );
        }
        const retention = {
          maxAgeMs: opts.retainEvents === 'off' ? null : parseDuration(opts.retainEvents!, '--retain-events'),
          maxCount,
        };
        const signIn = signInPoliciesFromFlags({
          sessionLifetime: opts.sessionLifetime,
          sessionIdle: opts.sessionIdle,
          lockoutFailures: opts.lockoutFailures,
          lockoutWindow: opts.lockoutWindow,
          lockoutTime: opts.lockoutTime,
        });
        const auditRetentionMs =
          opts.retainAudit === 'off' ? null : parseDuration(opts.retainAudit!, '--retain-audit');
        const server = await startServer({
          auditRetentionMs,
          signIn,
          port: port(opts.port!),
          host: opts.host!,
          dataDir: program.opts<{ data?: string }>().data ?? process.env.FLEETD_DATA ?? 'fleetd-data',
          db: opts.db,
          sqliteSync: opts.sync,
          thresholds: thresholds ?? DEFAULT_THRESHOLDS,
          heartbeatIntervalSec: Math.max(
            1,
            Math.round(parseDuration(opts.heartbeatInterval!, '--heartbeat-interval') / 1000),
          ),
          logLevel: opts.logLevel!,
          serverSigning: opts.serverSigning,
          trustedKeyFiles: opts.trustedKey ?? [],
          artifactOffload: opts.artifactOffload,
          mqtt: mqttSettingsFromFlags({
            mqtt: opts.mqtt,
            port: opts.mqttPort,
            tlsPort: opts.mqttTlsPort,
            ca: opts.mqttCa,
            cert: opts.mqttCert,
            key: opts.mqttKey,
          }),
          leaseMs,
          engineIntervalMs,
          webhookIntervalMs: parseDuration(opts.webhookInterval!, '--webhook-interval'),
          webhookTimeoutMs: parseDuration(opts.webhookTimeout!, '--webhook-timeout'),
          webhookAllowPrivate: opts.webhookAllowPrivate === true,
          scrubBytesPerSec: Math.round(scrubRate * 1024 * 1024),
          retention,
          deviceAuth: deviceAuthMode(opts.deviceAuth!),
          enrollment: oneOf(opts.enrollment!, ['token', 'approve'] as const, '--enrollment'),
          deviceCertValidityMs: parseDuration(opts.deviceCertValidity!, '--device-cert-validity'),
          tls,
          insecureHttp: opts.insecureHttp === true,
          metricsTokenFile: opts.metricsTokenFile,
          alertRulesFile: opts.alertRules,
          tufMirrorDir: opts.tufMirror,
          deltaTool: oneOf(opts.deltaTool!, ['xdelta3', 'zstd', 'off'] as const, '--delta-tool'),
          ddiTenant: ddiTenant(opts.ddiTenant!),
          menderArtifactKeyFiles: opts.menderArtifactKey ?? [],
          deliveryKeyPassphraseFile: opts.deliveryKeyPassphraseFile,
          signedUrls: signedUrlsFromFlags(opts),
          egress: egressFromFlag(opts.egressCap),
          oidc: oidcSettings({
            issuer: opts.oidcIssuer,
            clientId: opts.oidcClientId,
            clientSecretFile: opts.oidcClientSecretFile,
            rolesFile: opts.oidcRoles,
          }),
        });
        const token = server.adminToken
          ? `Admin API token (saved in ${server.adminTokenFile}, mode 0600):\n  ${server.adminToken}`
          : existsSync(server.adminTokenFile)
            ? `Admin API token: see ${server.adminTokenFile}`
            : `Admin API token: ${server.adminTokenFile} is missing; make a new one with ` +
              '`fleetd admin-token reset --data DIR` (and --db URL if the server uses one); the old one stops working';
        if (server.mqtt) {
          const kind = server.mqtt.embedded ? 'embedded broker listening on' : 'bridged to the broker at';
          console.log(`MQTT: ${kind} ${server.mqtt.url}`);
          if (server.mqtt.tlsUrl && server.mqtt.tlsUrl !== server.mqtt.url)
            console.log(`MQTT: embedded broker listening with TLS on ${server.mqtt.tlsUrl}`);
        }
        console.log(listenerBanner(opts.host!, server.tls));
        console.log(`${token}\nFleetD server listening on ${server.url}  (API docs: ${server.url}/docs)`);
        const stop = async () => {
          await server.close();
          process.exit(0);
        };
        process.once('SIGINT', () => void stop());
        process.once('SIGTERM', () => void stop());
      },
    );
}

function oneOf<T extends string>(value: string, allowed: readonly T[], flag: string): T {
  if (!(allowed as readonly string[]).includes(value))
    throw new CliError(`${flag}: "${value}" must be ${allowed.join(' or ')}`);
  return value as T;
}

function ddiTenant(value: string): string {
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(value) || value === 'api') {
    throw new CliError(`--ddi-tenant: "${value}" must be 1-64 letters, digits, . _ - (and not "api")`);
  }
  return value;
}

function deviceAuthMode(value: string): 'any' | 'mtls' {
  if (value !== 'any' && value !== 'mtls')
    throw new CliError(`--device-auth: "${value}" must be any or mtls`);
  return value;
}

function signedUrlsFromFlags(opts: Record<string, string | undefined>): SignedArtifactUrls | undefined {
  if (opts.artifactBaseUrl === undefined) return undefined;
  if (opts.artifactUrlSecretFile === undefined) {
    throw new CliError(
      '--artifact-base-url needs --artifact-url-secret-file FILE (the secret links are signed with)',
    );
  }
  try {
    return signedArtifactUrls({
      baseUrl: opts.artifactBaseUrl,
      secretFile: opts.artifactUrlSecretFile,
      form: oneOf(opts.artifactUrlForm!, ['nginx', 'hmac'] as const, '--artifact-url-form'),
      ttlMs: parseDuration(opts.artifactUrlTtl!, '--artifact-url-ttl'),
    });
  } catch (error) {
    if (error instanceof FleetError || (error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new CliError((error as Error).message);
    }
    throw error;
  }
}

function egressFromFlag(value: string | undefined): EgressLimit | undefined {
  if (value === undefined) return undefined;
  const mbps = Number(value);
  if (!Number.isFinite(mbps) || mbps <= 0)
    throw new CliError(`--egress-cap: "${value}" must be MB/s above 0`);
  return new EgressLimit(Math.round(mbps * 1_000_000));
}
