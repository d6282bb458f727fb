/**
 * `fleetd delivery set|show|remove DEVICE` and `fleetd delivery key`: how the server reaches devices that run no
 * agent (docs/agentless.md). The server checks the settings; the CLI only shapes them.
 */
import type { Command } from 'commander';
import { CliError, type Client } from './client.js';
import { type OutputFormat, printJson } from './output.js';

interface Ctx {
  client(): Client;
  format(): OutputFormat;
}

interface DeliveryReply {
  device_id: string;
  delivery: Record<string, unknown>;
  updated_at: string;
}

interface SetOptions {
  ssh?: string;
  port?: string;
  hostKey?: string;
  install?: string;
  health?: string;
  uploadDir?: string;
  httpPush?: string;
}

const deliveryPath = (id: string) => `/api/v1/devices/${encodeURIComponent(id)}/delivery`;

/** `user@host` (the port by --port: an IPv6 host has colons of its own). */
function sshSettings(o: SetOptions): Record<string, unknown> {
  const at = o.ssh!.lastIndexOf('@');
  if (at <= 0 || at === o.ssh!.length - 1) throw new CliError(`--ssh: "${o.ssh}" is not user@host`);
  if (!o.hostKey)
    throw new CliError('--ssh needs --host-key (a line of `ssh-keyscan HOST`, or its SHA256: fingerprint)');
  if (!o.install) throw new CliError('--ssh needs --install COMMAND (run with $FLEETD_ARTIFACT set)');
  return {
    method: 'ssh',
    user: o.ssh!.slice(0, at),
    host: o.ssh!.slice(at + 1),
    ...(o.port === undefined ? {} : { port: Number(o.port) }),
    host_key: o.hostKey,
    install_command: o.install,
    ...(o.health === undefined ? {} : { health_command: o.health }),
    ...(o.uploadDir === undefined ? {} : { upload_dir: o.uploadDir }),
  };
}

function show(r: DeliveryReply): void {
  const d = r.delivery;
  if (d.method === 'http_push') console.log(`${r.device_id}: http_push to ${String(d.url)}`);
  else {
    console.log(`${r.device_id}: ssh ${String(d.user)}@${String(d.host)}:${String(d.port)}`);
    console.log(`  host key: ${String(d.host_key)}`);
    console.log(`  install:  ${String(d.install_command)}`);
    console.log(`  health:   ${d.health_command === null ? '(none)' : String(d.health_command)}`);
  }
}

export function registerDelivery(program: Command, ctx: Ctx): void {
  const delivery = program
    .command('delivery')
    .description('deliver updates to devices without an agent, over SSH or by HTTP push');

  delivery
    .command('set')
    .argument('<device>', 'device id (imported already)')
    .description('deliver to this device over SSH (--ssh) or by HTTP push (--http-push)')
    .option('--ssh <user@host>', 'log in as user on host with the server key (fleetd delivery key)')
    .option('--port <port>', 'SSH port (default 22)')
    .option('--host-key <key>', "the device's pinned host key: 'ssh-ed25519 AAAA…' or SHA256:…")
    .option(
      '--install <command>',
      'run after the upload, $FLEETD_ARTIFACT naming the file; exit 0 = installed',
    )
    .option('--health <command>', 'run after the install; exit 0 = healthy')
    .option('--upload-dir <dir>', 'where the artifact is uploaded (default /tmp)')
    .option('--http-push <url>', 'POST the artifact to this URL on the device; a 2xx answer = installed')
    .action(async (id: string, o: SetOptions) => {
      if ((o.ssh === undefined) === (o.httpPush === undefined)) {
        throw new CliError('delivery set: give exactly one of --ssh user@host or --http-push URL');
      }
      const body = o.ssh !== undefined ? sshSettings(o) : { method: 'http_push', url: o.httpPush };
      const r = await ctx.client().request<DeliveryReply>('PUT', deliveryPath(id), body);
      if (ctx.format() === 'json') printJson(r);
      else show(r);
    });

  delivery
    .command('show')
    .argument('<device>', 'device id')
    .description('how the server delivers to this device (404: it runs an agent)')
    .action(async (id: string) => {
      const r = await ctx.client().request<DeliveryReply>('GET', deliveryPath(id));
      if (ctx.format() === 'json') printJson(r);
      else show(r);
    });

  delivery
    .command('remove')
    .argument('<device>', 'device id')
    .description('stop delivering to this device (it is expected to run an agent)')
    .action(async (id: string) => {
      await ctx.client().request<undefined>('DELETE', deliveryPath(id));
      if (ctx.format() === 'json') printJson({ device_id: id, removed: true });
      else console.log(`${id}: delivery removed`);
    });

  delivery
    .command('key')
    .description("the server's SSH public key: add it to authorized_keys on each SSH device")
    .action(async () => {
      const r = await ctx.client().request<{ public_key: string }>('GET', '/api/v1/delivery/ssh-key');
      if (ctx.format() === 'json') printJson(r);
      else console.log(r.public_key);
    });
}
