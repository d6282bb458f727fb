/**
 * `fleetd keys sign-targets --key FILE`: CI's offline targets key signs the server's current targets metadata,
 * when the root requires it (`fleetd keys root next --offline-targets-key`, docs/signing.md). It fetches the
 * metadata as a device does, prints the targets it is about to vouch for, signs them and hands the signature
 * back; the server checks it against the root before keeping it.
 */
import { Metadata, MetadataKind, type Targets } from '@tufjs/models';
import type { Command } from 'commander';
import { readTufSigner } from '../artifacts/tuf/tuf-keys.js';
import { CliError, type Client } from './client.js';
import { type OutputFormat, printJson } from './output.js';

interface Ctx {
  format(): OutputFormat;
  client(): Client;
}

type Signed = { signed: { meta: Record<string, { version: number } | undefined> } };

export function registerSignTargets(keys: Command, ctx: Ctx): void {
  keys
    .command('sign-targets')
    .description("sign the server's current TUF targets with an offline (CI) targets key")
    .requiredOption('--key <file>', 'the offline targets key (Ed25519, PKCS#8 PEM)')
    .option('--expect <name@version>', 'refuse unless this target is among those signed; repeat', collect, [])
    .action(async (o: { key: string; expect: string[] }) => {
      const client = ctx.client();
      const signer = await readTufSigner(o.key);
      const get = (name: string) => client.request<unknown>('GET', `/api/device/v1/tuf/${name}`);
      const snapshot = ((await get('timestamp.json')) as Signed).signed.meta['snapshot.json']?.version;
      const version = ((await get(`${snapshot}.snapshot.json`)) as Signed).signed.meta['targets.json']
        ?.version;
      if (version === undefined) throw new CliError('the server published no targets metadata');
      const md: Metadata<Targets> = Metadata.fromJSON(
        MetadataKind.Targets,
        (await get(`${version}.targets.json`)) as never,
      );
      const names = Object.keys(md.signed.targets).sort();
      const missing = o.expect.filter((n) => !names.includes(n));
      if (missing.length > 0) {
        throw new CliError(`targets version ${version} lacks ${missing.join(', ')}: nothing signed`);
      }
      md.sign(signer.sign, true);
      const signature = md.signatures[signer.keyId]!;
      const r = await client.request<{ version: number; signatures: number }>(
        'POST',
        '/api/v1/tuf/targets/signatures',
        { version, signatures: [{ keyid: signature.keyID, sig: signature.sig }] },
      );
      if (ctx.format() === 'json') return printJson({ ...r, targets: names });
      console.log(`signed targets version ${version} (${names.length} targets: ${names.join(', ')})`);
      console.log(`the server holds ${r.signatures} signature(s) on it`);
    });
}

const collect = (value: string, previous: string[]) => [...previous, value];
