#!/usr/bin/env node
/** The `fleetd` command: server, operator CLI (one file per noun). Errors print one line and exit non-zero. */
import { Command, CommanderError } from 'commander';
import { isFleetError } from '../core/errors.js';
import { registerAdminToken } from './admin-token.js';
import { registerAgent } from './agent.js';
import { registerAlerts } from './alerts.js';
import { registerArtifact } from './artifact.js';
import { registerAudit } from './audit.js';
import { registerCa } from './ca.js';
import { CliError, createClient } from './client.js';
import { registerCommands } from './commands.js';
import { registerConfig } from './config.js';
import { registerConnectivity } from './connectivity.js';
import { registerDelivery } from './delivery.js';
import { registerDemo } from './demo.js';
import { registerVehiclesDemo } from './demo-vehicles.js';
import { registerDeploy } from './deploy.js';
import { registerDevices } from './devices.js';
import { registerEnrollment } from './enrollment.js';
import { registerFleet } from './fleet.js';
import { registerGroups } from './groups.js';
import { registerKeys } from './keys.js';
import type { OutputFormat } from './output.js';
import { registerProvision } from './provision.js';
import { registerServer } from './server.js';
import { registerSim } from './sim.js';
import { registerTokens } from './tokens.js';
import { registerUsers } from './users.js';
import { registerWebhooks } from './webhooks.js';
import { registerWindows } from './windows.js';

const program = new Command('fleetd')
  .description('FleetD: keep a fleet of devices on the right software')
  .option('--server <url>', 'FleetD server (env FLEETD_SERVER; default http://127.0.0.1:8080)')
  .option('--token <token>', 'API token (env FLEETD_TOKEN; default: <data>/admin-token)')
  .option('--data <dir>', 'local data folder holding admin-token (env FLEETD_DATA; default fleetd-data)')
  .option(
    '--ca <file>',
    'CA certificate to trust for https servers (env FLEETD_CA; default <data>/pki/ca.crt)',
  )
  .option('-o, --output <format>', 'table or json', 'table')
  .exitOverride()
  .configureOutput({ outputError: (text, write) => write(text.split('\n')[0]!.trim() + '\n') });

const ctx = {
  client: () => {
    const o = program.opts<{ server?: string; token?: string; data?: string; ca?: string }>();
    return createClient(o);
  },
  format: (): OutputFormat => {
    const f = program.opts<{ output: string }>().output;
    if (f !== 'table' && f !== 'json') throw new CliError(`--output: "${f}" must be table or json`);
    return f;
  },
};

registerServer(program);
registerAdminToken(program);
registerDevices(program, ctx);
registerProvision(program, ctx);
registerFleet(program, ctx);
registerEnrollment(program, ctx);
registerArtifact(program, ctx);
registerKeys(program, ctx);
registerDeploy(program, ctx);
registerVehiclesDemo(registerDemo(program, ctx), ctx);
registerWebhooks(program, ctx);
registerCa(program, ctx);
registerAgent(program);
registerSim(program, ctx);
registerUsers(program, ctx);
registerTokens(program, ctx);
registerAudit(program, ctx);
registerAlerts(program, ctx);
registerCommands(program, ctx);
registerDelivery(program, ctx);
registerGroups(program, ctx);
registerWindows(program, ctx);
registerConnectivity(program, ctx);
registerConfig(program, ctx);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exit(error.exitCode === 0 ? 0 : 2);
  }
  const message = error instanceof CliError || isFleetError(error) ? error.message : String(error);
  process.stderr.write(`fleetd: ${message}\n`);
  process.exit(1);
}
