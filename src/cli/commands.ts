/**
 * Remote commands (docs/remote-commands.md): `fleetd devices exec ID|--filter EXPR -- reboot | restart-app NAME
 * | collect-logs [--since 1h] | run FILE`, and `fleetd commands show ID | logs ID DEVICE --out FILE`.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { readPrivateKeyFile, signManifest } from '../artifacts/signing.js';
import { scriptSigningText } from '../core/command.js';
import { parseDuration } from '../core/duration.js';
import type {
  CommandBodyJson,
  CommandJsonType,
  CreateCommandReplyJson,
  DeviceCommandListJson,
} from '../protocol/commands.js';
import { CliError, type Client } from './client.js';
import { ago, type OutputFormat, printJson, table } from './output.js';

interface Ctx {
  client(): Client;
  format(): OutputFormat;
}

interface ExecFlags {
  filter?: string;
  deadline?: string;
  maxConcurrent?: string;
  key?: string;
  signature?: string;
}

const USAGE = 'after --, one of: reboot | restart-app NAME | collect-logs [--since 1h] | run FILE';

function readText(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new CliError(
      `cannot read ${what} ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
}

/** The command words after `--`, as the API's command. A script is signed here, with the operator's key. */
async function commandOf(words: string[], flags: ExecFlags): Promise<CommandBodyJson> {
  const [kind, ...rest] = words;
  switch (kind) {
    case 'reboot':
      if (rest.length > 0) throw new CliError(`reboot takes nothing more; ${USAGE}`);
      return { kind };
    case 'restart-app':
      if (rest.length !== 1) throw new CliError('restart-app takes the application name: restart-app NAME');
      return { kind, app: rest[0]! };
    case 'collect-logs': {
      if (rest.length === 0) return { kind };
      if (rest.length !== 2 || rest[0] !== '--since') throw new CliError('collect-logs [--since 1h]');
      return { kind, since: Math.ceil(parseDuration(rest[1]!, '--since') / 1000) };
    }
    case 'run': {
      if (rest.length !== 1) throw new CliError('run takes one script file: run FILE');
      const script = readText(rest[0]!, 'script');
      let signature: string;
      if (flags.signature !== undefined) signature = readText(flags.signature, 'signature').trim();
      else if (flags.key !== undefined) {
        signature = signManifest(scriptSigningText(script), await readPrivateKeyFile(flags.key));
      } else {
        throw new CliError(
          'run: devices run only scripts signed with the release-signing key: give --key KEY (or --signature FILE)',
        );
      }
      return { kind, script, signature };
    }
    default:
      throw new CliError(USAGE);
  }
}

function printTargets(c: CommandJsonType): void {
  console.log(
    `${c.id}: ${c.kind}${c.app ? ` ${c.app}` : ''}, by ${c.actor}, expires ${c.expires_at}; ` +
      Object.entries(c.counts)
        .map(([state, n]) => `${n} ${state}`)
        .join(', '),
  );
  if (c.devices?.length) {
    console.log(
      table(
        ['DEVICE', 'STATE', 'EXIT', 'FINISHED', 'OUTPUT'],
        (c.devices ?? []).map((d) => [
          d.device_id,
          d.state,
          d.exit_code === null ? null : String(d.exit_code),
          d.finished_at ? ago(d.finished_at) : null,
          (d.error ?? d.output ?? '').trim().split('\n').pop()?.slice(0, 60) ?? '',
        ]),
      ),
    );
  }
}

export function registerExec(devices: Command, ctx: Ctx): void {
  devices
    .command('exec')
    .argument('<words...>', 'a device id (unless --filter), then -- and the command')
    .description(`run a remote command on a device or on every device a filter selects; ${USAGE}`)
    .option('-f, --filter <expr>', "the devices a filter selects, e.g. 'tag.store = 12'")
    .option('--deadline <duration>', 'a device that has not taken the command by then never runs it', '10m')
    .option('--max-concurrent <n>', 'at most this many devices run it at once', '50')
    .option('--key <file>', 'run: sign the script with this release-signing key (signing.key)')
    .option('--signature <file>', "run: the script's signature, made elsewhere (base64)")
    .action(async (words: string[], flags: ExecFlags) => {
      const id = flags.filter === undefined ? words[0] : undefined;
      const rest = flags.filter === undefined ? words.slice(1) : words;
      const command = await commandOf(rest, flags);
      const maxConcurrent = Number(flags.maxConcurrent);
      if (!Number.isInteger(maxConcurrent) || maxConcurrent < 1)
        throw new CliError(`--max-concurrent: "${flags.maxConcurrent}" is not a positive integer`);
      const body = {
        ...(flags.filter === undefined ? { ids: [id!] } : { filter: flags.filter }),
        command,
        ...(flags.deadline !== undefined ? { deadline: flags.deadline } : {}),
        max_concurrent: maxConcurrent,
      };
      const r = await ctx.client().request<CreateCommandReplyJson>('POST', '/api/v1/commands', body);
      if (ctx.format() === 'json') printJson(r);
      else {
        for (const item of r.results)
          if (!item.ok) console.error(`${item.id}: ${item.error?.message ?? 'refused'}`);
        if (r.command) {
          const n = r.command.counts.queued ?? 0;
          console.log(
            `${r.command.id}: queued for ${n} device${n === 1 ? '' : 's'}; fleetd commands show ${r.command.id}`,
          );
        } else console.log('no device took the command');
      }
      if (r.results.some((item) => !item.ok)) process.exitCode = 1;
    });

  devices
    .command('commands')
    .argument('<id>', 'device id')
    .description("a device's remote commands, newest first, with its result of each")
    .option('--limit <n>', 'how many at most (up to 1000)', '20')
    .action(async (id: string, opts: { limit: string }) => {
      const r = await ctx
        .client()
        .request<DeviceCommandListJson>(
          'GET',
          `/api/v1/devices/${encodeURIComponent(id)}/commands?limit=${encodeURIComponent(opts.limit)}`,
        );
      if (ctx.format() === 'json') return printJson(r);
      console.log(
        table(
          ['COMMAND', 'KIND', 'STATE', 'EXIT', 'CREATED'],
          r.commands.map((c) => [
            c.id,
            c.kind,
            c.result.state,
            c.result.exit_code === null ? null : String(c.result.exit_code),
            ago(c.created_at),
          ]),
        ),
      );
    });
}

export function registerCommands(program: Command, ctx: Ctx): void {
  const commands = program.command('commands').description('remote commands sent to devices');
  commands
    .command('show')
    .argument('<id>', 'command id')
    .description("a command and each device's state, exit code and output")
    .action(async (id: string) => {
      const c = await ctx
        .client()
        .request<CommandJsonType>('GET', `/api/v1/commands/${encodeURIComponent(id)}`);
      if (ctx.format() === 'json') return printJson(c);
      printTargets(c);
    });

  commands
    .command('logs')
    .argument('<id>', 'command id')
    .argument('<device>', 'device id')
    .requiredOption('--out <file>', 'where to write the logs (-o is the output format, as for every command)')
    .description('download the logs a device collected for a collect-logs command')
    .action(async (id: string, device: string, opts: { out: string }) => {
      const bytes = await ctx
        .client()
        .download(
          `/api/v1/commands/${encodeURIComponent(id)}/devices/${encodeURIComponent(device)}/logs`,
          opts.out,
        );
      if (ctx.format() === 'json') printJson({ file: opts.out, bytes });
      else console.log(`wrote ${bytes} bytes to ${opts.out}`);
    });
}
