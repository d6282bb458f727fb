/**
 * `fleetd audit ls | verify | export`: the real binary against a real server process on each database; a row
 * edited straight in the database makes `verify` exit 1 naming the entry.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { FLEETD, type ServerProcess, spawnServer, tempDir } from './support/processes.js';
import { forEachDatabase } from './support/stores.js';

function cli(server: ServerProcess, data: string, ...args: string[]) {
  const child = spawn(process.execPath, [FLEETD, '--server', server.url, '--data', data, ...args], {
    env: { ...process.env, FLEETD_SERVER: '', FLEETD_TOKEN: '' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr })),
  );
}

/** Changes one audit row behind the server's back, as someone with access to the database could. */
async function tamper(db: string | undefined, data: string, statement: string): Promise<void> {
  if (db === undefined) {
    const file = new Database(join(data, 'fleetd.db'));
    try {
      file.exec(statement);
    } finally {
      file.close();
    }
    return;
  }
  const client = new pg.Client({ connectionString: db });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

let server: ServerProcess | undefined;
afterEach(async () => {
  await server?.kill();
  server = undefined;
});

forEachDatabase((database) => {
  describe('fleetd audit', () => {
    // Nine CLI processes: on a loaded machine each takes seconds to start.
    it('lists and exports a real run, verifies it, and names the entry edited in the database', {
      timeout: 240_000,
    }, async () => {
      const db = await database.fresh();
      const data = tempDir();
      server = await spawnServer(data, ['--no-mqtt', ...(db === undefined ? [] : ['--db', db])]);
      for (const i of [1, 2, 3]) {
        const r = await cli(server, data, 'webhooks', 'add', `https://hooks.example.com/${i}`);
        expect(r.code, r.stderr).toBe(0);
      }

      const ls = await cli(server, data, 'audit', 'ls', '--actor', 'api:admin', '--since', '1h');
      expect(ls.code, ls.stderr).toBe(0);
      expect(ls.stdout).toMatch(/^SEQ\s+AT\s+ACTOR\s+ROLE\s+SOURCE\s+ACTION\s+TARGET\s+OUTCOME\n3\s/);
      expect(ls.stdout).toContain('POST /api/v1/webhooks');

      const exported = await cli(server, data, 'audit', 'export');
      expect(exported.code, exported.stderr).toBe(0);
      const lines = exported.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { seq: number });
      expect(lines.map((l) => l.seq)).toEqual([1, 2, 3]);

      const ok = await cli(server, data, 'audit', 'verify');
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stdout).toMatch(
        /^audit log verified: 3 entries, from anchor 0 to head 3 \([0-9a-f]{64}\)\n$/,
      );

      await tamper(db, data, `update audit_log set source = '10.9.9.9' where seq = 2`);
      const bad = await cli(server, data, 'audit', 'verify');
      expect(bad.code).toBe(1);
      expect(bad.stderr).toBe(
        'fleetd: audit log does not verify: entry 2: entry 2 was changed after it was written (hash_mismatch); ' +
          '1 entries before it hold\n',
      );
      const json = await cli(server, data, '--output', 'json', 'audit', 'verify');
      expect(json.code).toBe(1);
      expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, first_bad: { seq: 2 } });
    });
  });
});
