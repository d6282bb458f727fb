/**
 * `fleetd artifact wrap-swu`'s writer: the .swu it makes passes FleetD's upload check and installs with Debian's
 * real `swupdate -i` (signature checked with `-k`, hardware with `-H`), writing the file where it says; signed by
 * another key, or for other hardware, swupdate refuses it and writes nothing.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { installedDespiteExitCode } from '../src/agent/installers/swupdate.js';
import { swuProblem } from '../src/artifacts/swu.js';
import { wrapSwu } from '../src/artifacts/swu-writer.js';
import { tempDir } from './support/processes.js';
import { missingTools, swupdateSetup } from './support/updaters.js';

const missing = missingTools(['swupdate', 'openssl']);

describe.skipIf(missing.length > 0)(
  `wrapping a file into a .swu${missing.length ? ` (skipped: ${missing})` : ''}`,
  () => {
    it('installs with the real swupdate, and is refused signed by another key or for other hardware', async () => {
      const work = tempDir('fleetd-swu-wrap-');
      const keys = swupdateSetup(work);
      const stranger = swupdateSetup(join(work, 'other'));
      const file = join(work, 'app.conf');
      writeFileSync(file, 'threshold = 7\n'.repeat(301)); // a size that needs padding
      const target = join(work, 'device', 'etc', 'app.conf');
      const wrap = async (out: string, signer: { cert: string; key: string }) => {
        await wrapSwu(
          {
            file,
            version: '2.1.0',
            hardwareCompatibility: ['1.0', '1.1'],
            path: target,
            signCert: signer.cert,
            signKey: signer.key,
          },
          out,
        );
        return out;
      };
      const install = (swu: string, board: string) =>
        spawnSync(keys.command, ['-k', keys.cert, '-H', board, '-i', swu], { encoding: 'utf8' });

      return (async () => {
        const good = await wrap(join(work, 'good.swu'), keys);
        expect(swuProblem(readFileSync(good))).toBeUndefined();

        const elsewhere = install(good, 'board:2.0');
        expect(elsewhere.status, elsewhere.stdout).not.toBe(0);
        expect(existsSync(target)).toBe(false);

        const forged = install(await wrap(join(work, 'forged.swu'), stranger), 'board:1.1');
        expect(forged.status, forged.stdout).not.toBe(0);
        expect(existsSync(target)).toBe(false);

        const installed = install(good, 'board:1.1');
        // swupdate's exit code races at exit (1 after a complete install); the agent's reading of its report decides
        const result = {
          kind: 'exit' as const,
          code: installed.status ?? -1,
          output: installed.stdout + installed.stderr,
        };
        expect(installed.status === 0 || installedDespiteExitCode(result), result.output).toBe(true);
        expect(readFileSync(target, 'utf8')).toBe(readFileSync(file, 'utf8'));
      })();
    }, 60_000);
  },
);
