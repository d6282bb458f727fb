/** `fleetd ca trust|list|untrust`: manufacturers' CAs whose device certificates register their device (docs/device-certificates.md). */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { TrustedCaJson } from '../protocol/trusted-cas.js';
import { CliError, type Client } from './client.js';
import { type OutputFormat, printJson, table } from './output.js';

interface Ctx {
  client(): Client;
  format(): OutputFormat;
}

const PATH = '/api/v1/pki/trusted-cas';

function tagsOf(pairs: string[]): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new CliError(`--tag: "${pair}" is not key=value`);
    tags[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return tags;
}

const tagText = (tags: Record<string, string>) =>
  Object.entries(tags)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

export function registerCa(program: Command, ctx: Ctx): void {
  const ca = program
    .command('ca')
    .description(
      "factory CAs: devices with a certificate from a trusted manufacturer's CA register themselves",
    );

  ca.command('trust')
    .argument('<file>', "the manufacturer's CA certificate (PEM)")
    .description('trust a CA: its device certificates are accepted at once and register their device')
    .option('--name <name>', "how FleetD names the CA (default: its subject's CN)")
    .option('--tag <key=value...>', 'tags given to every device it registers')
    .option(
      '--hardware-from <source>',
      'where the hardware type is read: ou (default) or oid:<dotted OID>, e.g. oid:1.3.6.1.4.1.55555.1',
    )
    .option('--approve', 'devices it registers wait as pending until an operator accepts them')
    .action(
      async (
        file: string,
        opts: { name?: string; tag?: string[]; hardwareFrom?: string; approve?: boolean },
      ) => {
        let certificate: string;
        try {
          certificate = readFileSync(file, 'utf8');
        } catch (error) {
          throw new CliError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? error}`);
        }
        const tags = tagsOf(opts.tag ?? []);
        const r = await ctx.client().request<TrustedCaJson>('POST', PATH, {
          certificate,
          ...(opts.name !== undefined ? { name: opts.name } : {}),
          ...(opts.tag ? { tags } : {}),
          ...(opts.hardwareFrom !== undefined ? { hardware_from: opts.hardwareFrom } : {}),
          ...(opts.approve ? { approve: true } : {}),
        });
        if (ctx.format() === 'json') return printJson(r);
        console.log(
          `trusted CA ${r.name} (${r.subject}, sha256 ${r.fingerprint}): its devices register on first contact` +
            (r.approve ? ' and wait for approval' : ''),
        );
      },
    );

  ca.command('list')
    .alias('ls')
    .description('the factory CAs trusted now')
    .action(async () => {
      const r = await ctx.client().request<{ trusted_cas: TrustedCaJson[] }>('GET', PATH);
      if (ctx.format() === 'json') return printJson(r);
      console.log(
        table(
          ['NAME', 'SUBJECT', 'HARDWARE FROM', 'TAGS', 'APPROVE', 'EXPIRES', 'FINGERPRINT'],
          r.trusted_cas.map((c) => [
            c.name,
            c.subject,
            c.hardware_from,
            tagText(c.tags),
            c.approve ? 'yes' : 'no',
            c.not_after,
            c.fingerprint,
          ]),
        ),
      );
    });

  ca.command('untrust')
    .argument('<name>')
    .description('stop trusting a CA: its certificates are refused from the next connection on')
    .action(async (name: string) => {
      const r = await ctx.client().request<TrustedCaJson>('DELETE', `${PATH}/${encodeURIComponent(name)}`);
      if (ctx.format() === 'json') return printJson(r);
      console.log(`untrusted CA ${r.name}: its certificates are refused from now on`);
    });
}
