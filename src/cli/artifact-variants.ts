/**
 * `fleetd artifact add-variant` and the `--variant CLIENT=FILE` of `artifact upload`: a release's file for one
 * device update client, a `.swu` for SWUpdate or a `.mender` for mender-client (docs/clients/).
 */
import { statSync } from 'node:fs';
import type { Command } from 'commander';
import { isVariantClient, VARIANT_CLIENTS } from '../core/release-variants.js';
import type { ReleaseJson } from '../protocol/releases.js';
import { CliError, type Client } from './client.js';
import { type OutputFormat, printJson } from './output.js';

interface Ctx {
  client(): Client;
  format(): OutputFormat;
}

export interface VariantFile {
  client: string;
  file: string;
}

/** `swupdate=app.swu` → its client and file, checked before anything is uploaded. */
export function parseVariants(given: readonly string[] | undefined): VariantFile[] {
  const variants = (given ?? []).map((text) => {
    const at = text.indexOf('=');
    const client = at > 0 ? text.slice(0, at) : '';
    const file = text.slice(at + 1);
    if (!isVariantClient(client) || file === '') {
      throw new CliError(
        `--variant: "${text}" must be CLIENT=FILE, CLIENT one of ${VARIANT_CLIENTS.join(', ')}`,
      );
    }
    readable(file, '--variant');
    return { client, file };
  });
  const twice = variants.find((v, i) => variants.findIndex((w) => w.client === v.client) !== i);
  if (twice) throw new CliError(`--variant: ${twice.client} is given twice`);
  return variants;
}

function readable(file: string, what: string): void {
  try {
    if (!statSync(file).isFile()) throw new Error('not a file');
  } catch (error) {
    throw new CliError(
      `${what}: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
}

/** Uploads one variant of a release; the server checks it and answers the release with its variants. */
export function uploadVariant(client: Client, release: string, variant: VariantFile): Promise<ReleaseJson> {
  return client.upload<ReleaseJson>(
    `/api/v1/artifacts/${encodeURIComponent(release)}/variants/${encodeURIComponent(variant.client)}`,
    variant.file,
  );
}

/** Uploads each variant of a release just uploaded; a refused one says the release itself is kept. */
export async function uploadVariants(client: Client, release: string, variants: readonly VariantFile[]) {
  let last: ReleaseJson | undefined;
  for (const variant of variants) {
    last = await uploadVariant(client, release, variant).catch((error: unknown) => {
      throw new CliError(
        `${release} was uploaded, but its ${variant.client} variant was refused: ${(error as Error).message} ` +
          `(add it with: fleetd artifact add-variant ${release} ${variant.client} FILE)`,
      );
    });
  }
  return last;
}

export function variantLine(r: ReleaseJson): string {
  const variants = r.variants ?? [];
  return variants.length === 0 ? 'none' : variants.map((v) => `${v.client} (sha256 ${v.sha256})`).join(', ');
}

export function registerArtifactVariants(artifact: Command, ctx: Ctx): void {
  artifact
    .command('add-variant')
    .argument('<release>', 'name@version or id')
    .argument('<client>', `the update client it is for: ${VARIANT_CLIENTS.join(' (a .swu) or ')} (a .mender)`)
    .argument('<file>', 'the .swu or .mender file')
    .description(
      "add a release's file for SWUpdate or mender-client devices, so one rollout reaches them with FleetD agents " +
        '(docs/clients/)',
    )
    .action(async (release: string, client: string, file: string) => {
      const [variant] = parseVariants([`${client}=${file}`]);
      const r = await uploadVariant(ctx.client(), release, variant!);
      if (ctx.format() === 'json') return printJson(r);
      console.log(`${r.name}@${r.version}: ${client} variant added; variants: ${variantLine(r)}`);
    });
}
