/**
 * An independent TUF client: tuf-js's Updater as its own program, sharing no code with FleetD. It refreshes the
 * metadata from the root in METADATA_DIR/root.json (the newer roots it verifies are kept there) and downloads
 * one target. Plain JavaScript, so it runs with `node` and nothing built.
 *
 *   node tuf-client-program.mjs METADATA_URL METADATA_DIR TARGET_DIR TARGET
 *
 * The device credential for target downloads comes in FLEETD_DEVICE_CREDENTIAL (never on the command line).
 * It prints one JSON line, {"ok":true,"target","length","sha256","file"} or {"ok":false,"error"}, and exits 0
 * or 1.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { BaseFetcher, Updater } from 'tuf-js';
// Not re-exported by the package's index; the Updater tells "no newer root" (a 404) by this type.
import { DownloadHTTPError } from 'tuf-js/dist/error.js';

const [metadataUrl, metadataDir, targetDir, target] = process.argv.slice(2);
const credential = process.env.FLEETD_DEVICE_CREDENTIAL;

class CredentialFetcher extends BaseFetcher {
  async fetch(url) {
    const response = await fetch(
      url,
      credential ? { headers: { authorization: `Bearer ${credential}` } } : {},
    );
    if (!response.ok || !response.body) {
      throw new DownloadHTTPError(`HTTP ${response.status} for ${url}`, response.status);
    }
    return response.body;
  }
}

async function main() {
  const updater = new Updater({
    metadataDir,
    metadataBaseUrl: metadataUrl,
    targetDir,
    targetBaseUrl: `${metadataUrl}/targets`,
    fetcher: new CredentialFetcher(),
    config: { fetchRetries: 0 },
  });
  await updater.refresh();
  const info = await updater.getTargetInfo(target);
  if (!info) throw new Error(`${target} is not in the signed targets`);
  const file = await updater.downloadTarget(info);
  const sha256 = createHash('sha256').update(readFileSync(file)).digest('hex');
  return { ok: true, target, length: info.length, sha256, file };
}

main().then(
  (result) => console.log(JSON.stringify(result)),
  (error) => {
    console.log(JSON.stringify({ ok: false, error: `${error.name}: ${error.message}` }));
    process.exitCode = 1;
  },
);
