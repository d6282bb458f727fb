/**
 * The import-boundary check (`npm run check:imports`, .dependency-cruiser.cjs) really refuses what it should:
 * run on small trees laid out like src/, it passes the allowed imports and fails, naming the rule, on an
 * upward one. The real tree is checked by `npm test` itself.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from './support/processes.js';

const repo = resolve(import.meta.dirname, '..');
const cruiser = join(repo, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');

function check(files: Record<string, string>): { status: number | null; output: string } {
  const root = tempDir();
  const tsconfig = { compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true } };
  writeFileSync(join(root, 'tsconfig.json'), JSON.stringify(tsconfig));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  const run = spawnSync(
    process.execPath,
    [cruiser, 'src', '--config', join(repo, '.dependency-cruiser.cjs'), '--output-type', 'err'],
    { cwd: root, encoding: 'utf8' },
  );
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

const allowed = {
  'src/core/clock.ts': 'export const now = () => 0;\n',
  'src/protocol/messages.ts': "import { now } from '../core/clock.js';\nexport const at = now();\n",
  'src/server/app.ts': "import { at } from '../protocol/messages.js';\nexport const app = at;\n",
  'src/transport/bridge.ts': "import { at } from '../protocol/messages.js';\nexport const bridge = at;\n",
};

describe('import boundaries', () => {
  it('pass a tree whose imports go down the layers', () => {
    const result = check(allowed);
    expect(result.output).toContain('no dependency violations');
    expect(result.status).toBe(0);
  });

  it('fail when core imports the server', () => {
    const result = check({
      ...allowed,
      'src/core/clock.ts':
        "import type { app } from '../server/app.js';\nexport const now = (): typeof app => 0;\n",
    });
    expect(result.status).not.toBe(0);
    expect(result.output).toContain('core-imports-only-itself');
  });

  it('fail when the transport reaches into the server (the old server ↔ transport cycle)', () => {
    const result = check({
      ...allowed,
      'src/transport/bridge.ts': "import { app } from '../server/app.js';\nexport const bridge = app;\n",
    });
    expect(result.status).not.toBe(0);
    expect(result.output).toContain('transport-imports-only-core-protocol-store-registry');
  });

  it('fail when the protocol depends on the store', () => {
    const result = check({
      ...allowed,
      'src/store/store.ts': 'export interface Row { id: string }\n',
      'src/protocol/messages.ts':
        "import type { Row } from '../store/store.js';\nexport const at: Row['id'] = '';\n",
    });
    expect(result.status).not.toBe(0);
    expect(result.output).toContain('protocol-imports-only-core');
  });
});
