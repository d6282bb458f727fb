/**
 * Remote configuration on the device (docs/configuration.md): when a heartbeat answer carries a configuration
 * document the agent has not tried yet, it writes the document to STATE/config/desired.json and runs the operator's
 * hook (`--config-hook CMD`, given $FLEETD_CONFIG_FILE, $FLEETD_CONFIG_VERSION and $FLEETD_CONFIG_HASH); exit 0 is
 * `applied`, anything else `failed`, reported with the tail of the hook's output. A failed hash is not tried again
 * until a new one comes: the server hands a document only until the device reported on it.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MAX_CONFIG_OUTPUT } from '../core/config-document.js';
import type { ConfigStatusJson, DeviceConfigOfferJson } from '../protocol/config.js';
import type { Logger } from './log.js';
import { describeFailure, runShell } from './run-command.js';

export interface ConfigHookOptions {
  /** The shell command that applies a document. */
  command: string;
  /** Where the document is written for the hook. */
  dir: string;
  timeoutMs: number;
  log: Logger;
  post(status: ConfigStatusJson): Promise<void>;
}

export class ConfigHook {
  /** The hash last tried, so that a document handed over twice is applied once. */
  private tried: string | undefined;
  /** A report the server has not taken yet (it was unreachable): posted again at the next step. */
  private unsent: ConfigStatusJson | undefined;

  constructor(private readonly o: ConfigHookOptions) {}

  async apply(offer: DeviceConfigOfferJson | undefined): Promise<void> {
    if (offer?.document !== undefined && offer.hash !== this.tried) {
      this.tried = offer.hash;
      this.unsent = await this.run(offer, offer.document);
      this.o.log.info('configuration hook done', {
        version: offer.version,
        result: this.unsent.result,
      });
    }
    await this.flush();
  }

  async flush(): Promise<void> {
    if (this.unsent === undefined) return;
    try {
      await this.o.post(this.unsent);
      this.unsent = undefined;
    } catch (error) {
      this.o.log.warn('configuration report not sent', { error: (error as Error).message });
    }
  }

  private async run(
    offer: DeviceConfigOfferJson,
    document: Record<string, unknown>,
  ): Promise<ConfigStatusJson> {
    const file = join(this.o.dir, 'desired.json');
    await mkdir(this.o.dir, { recursive: true });
    // Written whole or not at all: a hook never reads half a document.
    await writeFile(`${file}.tmp`, `${JSON.stringify(document, null, 2)}\n`, { mode: 0o600 });
    await rename(`${file}.tmp`, file);
    const result = await runShell(['-c', this.o.command], {
      timeoutMs: this.o.timeoutMs,
      keepOutput: MAX_CONFIG_OUTPUT,
      env: { FLEETD_CONFIG_FILE: file, FLEETD_CONFIG_VERSION: offer.version, FLEETD_CONFIG_HASH: offer.hash },
    });
    const output = 'output' in result ? result.output : '';
    const failure = describeFailure(result, this.o.timeoutMs);
    const tail = (
      failure === undefined
        ? output
        : `${output}${output.endsWith('\n') || output === '' ? '' : '\n'}${failure}`
    ).slice(-MAX_CONFIG_OUTPUT);
    return {
      version: offer.version,
      hash: offer.hash,
      result: failure === undefined ? 'applied' : 'failed',
      ...(tail === '' ? {} : { output: tail }),
    };
  }
}
