/**
 * An independent director client: tuf-js's Updater as its own program, sharing no code with FleetD. It refreshes
 * a device's director metadata from the director root in METADATA_DIR/root.json, with the device's credential on
 * every request (the director's metadata is per device), and prints what the director's targets say of one
 * target. Plain JavaScript, so it runs with `node` and nothing built.
 *
 *   node director-client-program.mjs METADATA_URL METADATA_DIR TARGET
 *
 * The credential comes in FLEETD_DEVICE_CREDENTIAL (never on the command line). It prints one JSON line,
 * {"ok":true,"target","length","sha256","custom","targets_version"} or {"ok":false,"error"}.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BaseFetcher, Updater } from 'tuf-js';
import { DownloadHTTPError } from 'tuf-js/dist/error.js';

const [metadataUrl, metadataDir, target] = process.argv.slice(2);
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
    fetcher: new CredentialFetcher(),
    config: { fetchRetries: 0 },
  });
  await updater.refresh();
  const info = await updater.getTargetInfo(target);
  if (!info) throw new Error(`${target} is not in the director's targets`);
  const targets = JSON.parse(readFileSync(join(metadataDir, 'targets.json'), 'utf8'));
  return {
    ok: true,
    target,
    length: info.length,
    sha256: info.hashes.sha256,
    custom: info.custom,
    targets_version: targets.signed.version,
  };
}

main().then(
  (result) => console.log(JSON.stringify(result)),
  (error) => {
    console.log(JSON.stringify({ ok: false, error: `${error.name}: ${error.message}` }));
    process.exitCode = 1;
  },
);
