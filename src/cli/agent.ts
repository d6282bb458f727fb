/** `fleetd agent`: the device agent as a process (the library is `fleetd/agent`). */
import type { Command } from 'commander';
import { Agent, AgentFatalError, agentOptionsFromFlags } from '../agent/index.js';
import { parseDuration } from '../core/duration.js';
import { CliError } from './client.js';

export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description(
      'run the device agent: heartbeat, download, verify, install into the inactive slot, health-check',
    )
    .option('--bundle <file>', 'a provisioning bundle (fleetd devices provision): gives every flag below')
    .option('--device-id <id>', "this device's id (required without --bundle)")
    .option('--hardware <type>', "this device's hardware type (required without --bundle)")
    .option(
      '--state-dir <dir>',
      'where the agent keeps its identity, slots and outbox (required without --bundle)',
    )
    .option(
      '--public-key <file>',
      'the release-signing public key to trust, signing.pub (required without --bundle)',
    )
    .option(
      '--tuf-root <file>',
      "the TUF root.json to trust: releases must then also be signed TUF targets (the first start's; later roots arrive signed)",
    )
    .option(
      '--tuf-metadata-url <url>',
      "read the TUF metadata from this mirror of the server's (a CDN's URL of `fleetd server --tuf-mirror`)",
    )
    .option(
      '--director-root <file>',
      "the director's root.json to trust: releases must then also be what the director signed for this device",
    )
    .option('--enroll-token <token>', 'enrollment token, needed only on the first start')
    .option(
      '--request-approval',
      'without a token: ask to join through the approval queue and wait until an operator accepts the device',
    )
    .option(
      '--enroll-cert',
      'enroll with a CSR and use mutual TLS (the default for an https server once a CA is known)',
    )
    .option('--key-type <type>', 'the device key for --enroll-cert: ecdsa-p256 (default) or ed25519')
    .option('--firmware <version>', 'the version running before any FleetD release')
    .option('--health-cmd <cmd>', 'health check: a shell command that exits 0 when the release works')
    .option('--health-url <url>', 'health check: a URL that answers 2xx when the release works')
    .option('--health-tcp <host:port>', 'health check: a TCP port that accepts connections')
    .option('--health-deadline <duration>', 'how long a new release has to become healthy', '60s')
    .option(
      '--consent-cmd <cmd>',
      'soft updates: install only when this shell command exits 0 (else ask again later)',
    )
    .option(
      '--consent-hook <cmd>',
      'soft updates: a shell command asked before installing, given $FLEETD_RELEASE_VERSION: exit 0 installs, exit 75 defers within the rollout budget (printing e.g. 4h says how long), anything else asks again in 5 minutes',
    )
    .option(
      '--mqtt <url>',
      'heartbeat and report over this MQTT broker, woken by the server; HTTP as fallback',
    )
    .option('--reboot-command <cmd>', 'remote command reboot runs this (default: systemctl reboot)')
    .option(
      '--restart-app-command <cmd>',
      'remote command restart-app runs this with $FLEETD_APP (default: systemctl restart "$FLEETD_APP")',
    )
    .option(
      '--collect-logs-command <cmd>',
      'remote command collect-logs uploads what this prints, given $FLEETD_SINCE_SEC (default: journalctl)',
    )
    .option(
      '--app-crash-file <file>',
      "the application's crash count, kept by its supervisor: reported since each install for the health gate",
    )
    .option('--no-telemetry', 'send no telemetry or inventory reports (docs/telemetry.md)')
    .option('--telemetry-interval <duration>', 'how often telemetry is reported', '5m')
    .option(
      '--metrics-file <file>',
      'custom metrics: a file of "name value" lines (or a JSON object), read at each report',
    )
    .option(
      '--metrics-cmd <cmd>',
      'custom metrics: a shell command printing "name value" lines, run at each report',
    )
    .option(
      '--app <name=command...>',
      'supervise an application: run in the active slot, restarted on crash with backoff and after each switch; a crash loop fails the health check (logs in STATE/logs)',
    )
    .option(
      '--installers <file>',
      'a JSON file configuring the install handlers: file targets, rauc, swupdate, dpkg root, container (docs/installers.md)',
    )
    .option(
      '--config-hook <cmd>',
      'remote configuration: apply a document with this shell command, given $FLEETD_CONFIG_FILE (docs/configuration.md)',
    )
    .action(async (flags) => {
      // `--server` is the program's global option (the same flag the operator commands use).
      // A bundle names its server; the environment is for operators and does not override it.
      const server =
        program.opts<{ server?: string }>().server ?? (flags.bundle ? undefined : process.env.FLEETD_SERVER);
      // `--ca FILE` is the program's option (the CA to trust https servers with), as for every command.
      const ca = program.opts<{ ca?: string }>().ca;
      const options = await agentOptionsFromFlags({
        ...flags,
        server,
        ...(ca !== undefined ? { ca } : {}),
        telemetryIntervalMs: parseDuration(flags.telemetryInterval, '--telemetry-interval'),
      }).catch((error: Error) => {
        throw new CliError(error.message);
      });
      options.healthDeadlineMs = parseDuration(flags.healthDeadline, '--health-deadline');
      const stop = new AbortController();
      process.once('SIGINT', () => stop.abort());
      process.once('SIGTERM', () => stop.abort());
      try {
        await new Agent(options).run(stop.signal);
      } catch (error) {
        if (error instanceof AgentFatalError) throw new CliError(error.message);
        throw error;
      }
    });
}
