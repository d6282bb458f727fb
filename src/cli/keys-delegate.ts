/**
 * Delegated targets roles (docs/signing.md): `fleetd keys delegate NAME` hands a product line's releases to a
 * team's keys, `fleetd keys delegations ls` lists them, `fleetd keys undelegate NAME` takes one back, and
 * `fleetd keys sign-delegated NAME --key FILE` is the team signing its role's newest metadata offline. Only the
 * public halves of key files ever leave this machine.
 */
import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Metadata, MetadataKind, type Targets } from '@tufjs/models';
import type { Command } from 'commander';
import { readTufSigner } from '../artifacts/tuf/tuf-keys.js';
import { CliError, type Client } from './client.js';
import { type OutputFormat, printJson } from './output.js';

interface Ctx {
  format(): OutputFormat;
  client(): Client;
}

interface DelegationView {
  name: string;
  paths: string[];
  key_ids: string[];
  threshold: number;
  terminating: boolean;
  version: number | null;
  signed_version: number | null;
  expires: string | null;
  targets: string[];
  awaiting_signature: boolean;
}

const collect = (value: string, previous: string[]) => [...previous, value];

/** The public half of a key file (public or private PEM), as PEM: a private key is never sent. */
function publicPem(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliError(`--key: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    const key = createPublicKey(text);
    if (key.asymmetricKeyType !== 'ed25519') throw new Error(`a ${key.asymmetricKeyType} key`);
    return key.export({ type: 'spki', format: 'pem' }).toString();
  } catch (e) {
    throw new CliError(`--key: ${file} is not an Ed25519 key in PEM (${(e as Error).message})`);
  }
}

export function registerDelegations(keys: Command, ctx: Ctx): void {
  keys
    .command('delegate')
    .argument('<name>', 'the delegated role, e.g. pos-team')
    .description("delegate the releases matching --paths to a team's keys: only they can sign them")
    .requiredOption(
      '--paths <pattern>',
      'a pattern over name@version, e.g. pos-firmware@*; repeat',
      collect,
      [],
    )
    .requiredOption(
      '--key <file>',
      "a team member's key file (only its public half is read); repeat",
      collect,
      [],
    )
    .option('--threshold <k>', 'how many of the keys must sign', (v) => Number(v), 1)
    .option('--terminating', 'devices look no further than this role for its paths', false)
    .action(
      async (
        name: string,
        o: { paths: string[]; key: string[]; threshold: number; terminating: boolean },
      ) => {
        if (!Number.isInteger(o.threshold) || o.threshold < 1) {
          throw new CliError(`--threshold: expected a whole number from 1 (got ${o.threshold})`);
        }
        const keys = o.key.map(publicPem);
        const d = await ctx
          .client()
          .request<DelegationView>('PUT', `/api/v1/tuf/delegations/${encodeURIComponent(name)}`, {
            paths: o.paths,
            keys,
            threshold: o.threshold,
            terminating: o.terminating,
          });
        if (ctx.format() === 'json') return printJson(d);
        console.log(
          `delegated ${d.paths.join(', ')} to ${d.name} (${d.threshold} of ${d.key_ids.length} key(s)${d.terminating ? ', terminating' : ''})`,
        );
        console.log(
          `next: the team signs version ${d.version} (${d.targets.length} target(s)): \`fleetd keys sign-delegated ${d.name} --key FILE\``,
        );
      },
    );

  keys
    .command('undelegate')
    .argument('<name>', 'the delegated role')
    .description(
      "remove a delegation: its releases go back to the top-level targets, signed by the server's key",
    )
    .action(async (name: string) => {
      const r = await ctx
        .client()
        .request<{ deleted: string }>('DELETE', `/api/v1/tuf/delegations/${encodeURIComponent(name)}`);
      if (ctx.format() === 'json') return printJson(r);
      console.log(`removed delegation ${r.deleted}: the server's targets key alone signs its releases now`);
    });

  keys
    .command('delegations')
    .description('the delegated targets roles')
    .command('ls')
    .description('list the delegations: paths, key ids, signed version and expiry')
    .action(async () => {
      const r = await ctx
        .client()
        .request<{ delegations: DelegationView[] }>('GET', '/api/v1/tuf/delegations');
      if (ctx.format() === 'json') return printJson(r);
      if (r.delegations.length === 0) return console.log('no delegations');
      for (const d of r.delegations) {
        const keys = d.key_ids.map((k) => `${k.slice(0, 16)}…`).join(' ');
        console.log(
          `${d.name}  paths ${d.paths.join(',')}  ${d.threshold} of ${keys}${d.terminating ? '  terminating' : ''}`,
        );
        const signed =
          d.signed_version === null
            ? 'never signed'
            : `signed version ${d.signed_version}, expires ${d.expires}`;
        const waiting = d.awaiting_signature ? `; version ${d.version} awaits the team's signature` : '';
        console.log(`  ${signed}${waiting}`);
      }
    });

  keys
    .command('sign-delegated')
    .argument('<name>', 'the delegated role')
    .description("sign a delegated role's newest metadata with the team's offline key")
    .requiredOption('--key <file>', "the team's key (Ed25519, PKCS#8 PEM)")
    .option('--expect <name@version>', 'refuse unless this target is among those signed; repeat', collect, [])
    .action(async (name: string, o: { key: string; expect: string[] }) => {
      const client = ctx.client();
      const signer = await readTufSigner(o.key).catch((e: Error) => {
        throw new CliError(`--key: ${o.key}: ${e.message}`);
      });
      const { delegations } = await client.request<{ delegations: DelegationView[] }>(
        'GET',
        '/api/v1/tuf/delegations',
      );
      const d = delegations.find((x) => x.name === name);
      if (!d) throw new CliError(`no delegated targets role ${name} (\`fleetd keys delegations ls\`)`);
      if (d.version === null) throw new CliError(`${name} has no metadata yet: try again in a minute`);
      if (!d.key_ids.includes(signer.keyId)) {
        throw new CliError(`${o.key} (key ${signer.keyId.slice(0, 16)}…) is not one of ${name}'s keys`);
      }
      const md: Metadata<Targets> = Metadata.fromJSON(
        MetadataKind.Targets,
        (await client.request<unknown>('GET', `/api/device/v1/tuf/${d.version}.${name}.json`)) as never,
      );
      const names = Object.keys(md.signed.targets).sort();
      const missing = o.expect.filter((n) => !names.includes(n));
      if (missing.length > 0) {
        throw new CliError(`${name} version ${d.version} lacks ${missing.join(', ')}: nothing signed`);
      }
      md.sign(signer.sign, true);
      const signature = md.signatures[signer.keyId]!;
      const r = await client.request<{ signatures: number; threshold: number; published: boolean }>(
        'POST',
        `/api/v1/tuf/delegations/${encodeURIComponent(name)}/signatures`,
        { version: d.version, signatures: [{ keyid: signature.keyID, sig: signature.sig }] },
      );
      if (ctx.format() === 'json') return printJson({ name, version: d.version, ...r, targets: names });
      console.log(`signed ${name} version ${d.version} (${names.length} targets: ${names.join(', ')})`);
      console.log(
        r.published
          ? `${r.signatures} of ${r.threshold} signature(s): devices trust it from their next refresh`
          : `${r.signatures} of ${r.threshold} signature(s): more of the team's keys must sign`,
      );
    });
}
