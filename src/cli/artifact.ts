/** `fleetd artifact upload | sign | ls | show | download | verify | repair | delete | deltas | wrap-mender | wrap-swu | add-variant` */
import { createHash, createPrivateKey, type KeyObject } from 'node:crypto';
import { createReadStream, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { wrapMenderArtifact } from '../artifacts/mender-writer.js';
import { readPrivateKeyFile, signManifest } from '../artifacts/signing.js';
import { wrapSwu } from '../artifacts/swu-writer.js';
import { canonicalManifest, RELEASE_TYPES, type ReleaseType } from '../core/manifest.js';
import type { DeltaListJson } from '../protocol/deltas.js';
import type { ReleaseJson, VerifyReportJson as VerifyReport } from '../protocol/releases.js';
import { parseVariants, registerArtifactVariants, uploadVariants, variantLine } from './artifact-variants.js';
import { CliError, type Client } from './client.js';
import { type OutputFormat, printJson, table } from './output.js';

interface Ctx {
  client(): Client;
  format(): OutputFormat;
}

function releaseType(text: string): ReleaseType {
  if (!(RELEASE_TYPES as readonly string[]).includes(text)) {
    throw new CliError(`--type: "${text}" must be one of ${RELEASE_TYPES.join(', ')}`);
  }
  return text as ReleaseType;
}

async function hashFile(file: string): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  try {
    await pipeline(createReadStream(file), hash);
  } catch (error) {
    throw new CliError(
      `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
  return { size: statSync(file).size, sha256: hash.digest('hex') };
}

const humanSize = (n: number) =>
  n >= 1024 ** 3
    ? `${(n / 1024 ** 3).toFixed(1)} GiB`
    : n >= 1024 ** 2
      ? `${(n / 1024 ** 2).toFixed(1)} MiB`
      : `${n} B`;

/** Deltas are often a few KiB: shown to the KiB. */
const deltaSize = (n: number) =>
  n >= 1024 ** 2 ? humanSize(n) : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;

const ref = (r: string) => encodeURIComponent(r);

export function registerArtifact(program: Command, ctx: Ctx): void {
  const artifact = program.command('artifact').description('signed releases: artifacts and their manifests');

  artifact
    .command('upload')
    .argument('<file>')
    .description('upload a file as a release; the server signs it, or give a manifest signed offline')
    .option('--name <name>', 'release name, e.g. pos-firmware')
    .option('--version <semver>', 'release version, e.g. 2.3.0')
    .option('--hardware <type...>', 'compatible hardware types')
    .option('--type <type>', `one of ${RELEASE_TYPES.join(', ')}`, 'firmware')
    .option('--allow-downgrade', 'a rollback release: may install over a higher version')
    .option('--manifest <file>', 'manifest.json signed offline (fleetd artifact sign)')
    .option('--signature <file>', 'its manifest.sig')
    .option(
      '--variant <client=file...>',
      'also a file for one update client: swupdate=FILE.swu, mender=FILE.mender',
    )
    .action(async (file: string, opts: Record<string, string | string[] | boolean | undefined>) => {
      const variants = parseVariants(opts.variant as string[] | undefined);
      const headers: Record<string, string> = {};
      const params = new URLSearchParams();
      if (opts.manifest || opts.signature) {
        if (!opts.manifest || !opts.signature) throw new CliError('--manifest and --signature go together');
        headers['x-fleetd-manifest'] = readFileSync(opts.manifest as string).toString('base64');
        headers['x-fleetd-signature'] = readFileSync(opts.signature as string).toString('base64');
      } else {
        if (!opts.name || !opts.version || !opts.hardware) {
          throw new CliError('--name, --version and --hardware are required (or --manifest and --signature)');
        }
        params.set('name', opts.name as string);
        params.set('version', opts.version as string);
        params.set('type', releaseType(opts.type as string));
        for (const h of opts.hardware as string[]) params.append('hardware', h);
        if (opts.allowDowngrade) params.set('allow_downgrade', 'true');
      }
      const uploaded = await ctx.client().upload<ReleaseJson>(`/api/v1/artifacts?${params}`, file, headers);
      const r =
        (await uploadVariants(ctx.client(), `${uploaded.name}@${uploaded.version}`, variants)) ?? uploaded;
      if (ctx.format() === 'json') return printJson(r);
      console.log(
        `${r.name}@${r.version} uploaded as ${r.id} (${humanSize(r.size)}, sha256 ${r.sha256}, key ${r.key_id})`,
      );
      if (variants.length > 0) console.log(`variants: ${variantLine(r)}`);
    });

  artifact
    .command('sign')
    .argument('<file>')
    .description('sign a release offline (in CI): writes manifest.json and manifest.sig')
    .requiredOption('--key <file>', 'Ed25519 private key (fleetd keys generate)')
    .requiredOption('--name <name>', 'release name')
    .requiredOption('--version <semver>', 'release version')
    .requiredOption('--hardware <type...>', 'compatible hardware types')
    .option('--type <type>', `one of ${RELEASE_TYPES.join(', ')}`, 'firmware')
    .option('--allow-downgrade', 'a rollback release')
    .option('--out <dir>', 'where to write manifest.json and manifest.sig', '.')
    .action(async (file: string, opts: Record<string, string | string[] | boolean | undefined>) => {
      const key = await readPrivateKeyFile(opts.key as string);
      const { size, sha256 } = await hashFile(file);
      const manifest = canonicalManifest({
        name: opts.name as string,
        version: opts.version as string,
        type: releaseType(opts.type as string),
        hardware: opts.hardware as string[],
        size,
        sha256,
        created: Date.now(),
        allow_downgrade: Boolean(opts.allowDowngrade),
      });
      const out = opts.out as string;
      writeFileSync(join(out, 'manifest.json'), manifest);
      writeFileSync(join(out, 'manifest.sig'), Buffer.from(signManifest(manifest, key), 'base64'));
      if (ctx.format() === 'json') return printJson({ manifest, out });
      console.log(`wrote ${join(out, 'manifest.json')} and ${join(out, 'manifest.sig')}`);
    });

  artifact
    .command('ls')
    .description('every release')
    .action(async () => {
      const r = await ctx.client().request<{ artifacts: ReleaseJson[] }>('GET', '/api/v1/artifacts');
      if (ctx.format() === 'json') return printJson(r);
      console.log(
        table(
          ['ID', 'NAME', 'VERSION', 'TYPE', 'HARDWARE', 'SIZE', 'SHA256', 'CREATED'],
          r.artifacts.map((a) => [
            a.id,
            a.name,
            a.version,
            a.type,
            a.hardware.join(','),
            humanSize(a.size),
            a.sha256.slice(0, 12),
            a.created_at,
          ]),
        ),
      );
    });

  artifact
    .command('show')
    .argument('<release>', 'name@version or id')
    .description('one release, with its signed manifest')
    .action(async (release: string) => {
      const r = await ctx.client().request<ReleaseJson>('GET', `/api/v1/artifacts/${ref(release)}`);
      if (ctx.format() === 'json') return printJson(r);
      for (const [k, v] of Object.entries(r)) {
        if (k === 'variants') console.log(`${k.padEnd(15)}${variantLine(r)}`);
        else console.log(`${k.padEnd(15)}${Array.isArray(v) ? v.join(', ') : v}`);
      }
    });

  artifact
    .command('download')
    .argument('<release>', 'name@version or id')
    .requiredOption('--out <file>', 'where to write the artifact')
    .description('download an artifact')
    .action(async (release: string, opts: { out: string }) => {
      const bytes = await ctx.client().download(`/api/v1/artifacts/${ref(release)}/download`, opts.out);
      if (ctx.format() === 'json') return printJson({ out: opts.out, bytes });
      console.log(`wrote ${opts.out} (${humanSize(bytes)})`);
    });

  artifact
    .command('verify')
    .argument('[release]', 'name@version or id (default: every release)')
    .description('re-hash stored artifacts on the server; exits 1 when one is damaged or missing')
    .action(async (release: string | undefined) => {
      const query = release === undefined ? '' : `?release=${encodeURIComponent(release)}`;
      const r = await ctx.client().request<VerifyReport>('POST', `/api/v1/artifacts/verify${query}`);
      if (r.damaged.length > 0) process.exitCode = 1;
      if (ctx.format() === 'json') return printJson(r);
      for (const d of r.damaged) {
        const found =
          d.problem === 'missing' ? 'missing' : `altered: ${d.found_size} bytes hashing to ${d.found_sha256}`;
        const users = [
          ...d.releases,
          ...(d.variants ?? []).map((v) => `${v.client} variant of ${v.release}`),
        ];
        console.log(`DAMAGED ${d.sha256} (${users.join(', ')}): ${found}`);
      }
      console.log(
        `checked ${r.checked} stored artifact${r.checked === 1 ? '' : 's'} (${humanSize(r.bytes)}): ` +
          (r.damaged.length === 0
            ? 'all intact'
            : `${r.damaged.length} damaged; repair with: fleetd artifact repair <release> <file>`),
      );
    });

  artifact
    .command('repair')
    .argument('<release>', 'name@version or id')
    .argument('<file>', "the release's artifact, byte for byte")
    .description('replace the damaged or missing stored bytes of a release with the file (same sha256)')
    .action(async (release: string, file: string) => {
      const r = await ctx
        .client()
        .upload<{ sha256: string; found: string }>(`/api/v1/artifacts/${ref(release)}/repair`, file);
      if (ctx.format() === 'json') return printJson(r);
      console.log(
        r.found === 'intact'
          ? `${release}: the stored artifact was intact; nothing to repair`
          : `${release}: the stored artifact was ${r.found}; replaced with ${file}`,
      );
    });

  artifact
    .command('delete')
    .argument('<release>', 'name@version or id')
    .description('delete a release (refused while an update in progress uses it)')
    .action(async (release: string) => {
      const r = await ctx
        .client()
        .request<{ deleted: string }>('DELETE', `/api/v1/artifacts/${ref(release)}`);
      if (ctx.format() === 'json') return printJson(r);
      console.log(`deleted ${release}`);
    });

  artifact
    .command('deltas')
    .argument('<release>', 'name@version or id')
    .description('the binary deltas built to a release, smallest first, with their sizes')
    .action(async (release: string) => {
      const r = await ctx.client().request<DeltaListJson>('GET', `/api/v1/releases/${ref(release)}/deltas`);
      if (ctx.format() === 'json') return printJson(r);
      if (r.deltas.length === 0) return console.log(`no deltas to ${release} (yet)`);
      console.log(
        table(
          ['FROM', 'TOOL', 'SIZE', 'OF FULL', 'SHA256', 'BUILD', 'CREATED'],
          r.deltas.map((d) => [
            d.source_version,
            d.tool,
            deltaSize(d.size),
            `${((100 * d.size) / Math.max(1, d.target_size)).toFixed(1)} %`,
            d.sha256.slice(0, 12),
            `${(d.build_ms / 1000).toFixed(1)} s`,
            d.created_at,
          ]),
        ),
      );
    });

  artifact
    .command('wrap-mender')
    .argument('<file>', 'the plain file to install')
    .description(
      'wrap a file into a Mender artifact (single-file update module) for mender-client devices; ' +
        'upload it with --type mender (docs/clients/mender.md)',
    )
    .requiredOption('--name <name>', 'the artifact name the device reports once installed')
    .requiredOption('--device-type <type...>', 'the Mender device types it installs on')
    .requiredOption('--dest-dir <dir>', 'the absolute directory on the device the file is copied into')
    .option('--filename <name>', 'its file name there (default: the file name)')
    .option('--key <file>', 'sign with this private key (PEM, RSA or EC P-256)')
    .requiredOption('--out <file>', 'the .mender file to write')
    .action(
      async (
        file: string,
        o: {
          name: string;
          deviceType: string[];
          destDir: string;
          filename?: string;
          key?: string;
          out: string;
        },
      ) => {
        let signKey: KeyObject | undefined;
        try {
          signKey = o.key === undefined ? undefined : createPrivateKey(readFileSync(o.key));
        } catch (error) {
          throw new CliError(`--key: ${o.key} is not a PEM private key (${(error as Error).message})`);
        }
        await wrapMenderArtifact(
          {
            file,
            name: o.name,
            deviceTypes: o.deviceType,
            destDir: o.destDir,
            ...(o.filename === undefined ? {} : { filename: o.filename }),
            ...(signKey ? { signKey } : {}),
          },
          o.out,
        ).catch((error: unknown) => {
          throw new CliError(`wrap-mender: ${(error as Error).message}`);
        });
        console.log(`wrote ${o.out} (${o.name} for ${o.deviceType.join(', ')}${signKey ? ', signed' : ''})`);
      },
    );

  artifact
    .command('wrap-swu')
    .argument('<file>', 'the plain file to install')
    .description(
      "wrap a file into a signed .swu (SWUpdate's rawfile handler writes it to --path) for SWUpdate devices; " +
        'upload it with --type swu (docs/clients/swupdate.md); signing needs the openssl command',
    )
    .requiredOption('--sw-version <version>', 'the version sw-description declares')
    .requiredOption(
      '--hardware-compatibility <revision...>',
      'the hardware revisions it installs on (SWUpdate checks them against its -H board:revision)',
    )
    .requiredOption('--path <path>', 'the absolute path on the device the file is written to')
    .requiredOption('--cert <file>', 'the signing certificate (PEM) the devices check with swupdate -k')
    .requiredOption('--key <file>', "the certificate's private key (PEM)")
    .requiredOption('--out <file>', 'the .swu file to write')
    .action(
      async (
        file: string,
        o: {
          swVersion: string;
          hardwareCompatibility: string[];
          path: string;
          cert: string;
          key: string;
          out: string;
        },
      ) => {
        await wrapSwu(
          {
            file,
            version: o.swVersion,
            hardwareCompatibility: o.hardwareCompatibility,
            path: o.path,
            signCert: o.cert,
            signKey: o.key,
          },
          o.out,
        ).catch((error: unknown) => {
          throw new CliError(`wrap-swu: ${(error as Error).message}`);
        });
        console.log(
          `wrote ${o.out} (${o.swVersion} for hardware ${o.hardwareCompatibility.join(', ')}, signed)`,
        );
      },
    );

  registerArtifactVariants(artifact, ctx);
}
