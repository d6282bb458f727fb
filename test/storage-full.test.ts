/** A full disk answers 507 STORAGE_FULL, met for real: writes to /dev/full and a SQLite page limit. */
import { open } from 'node:fs/promises';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../src/artifacts/blob-store.js';
import { storageFull } from '../src/server/storage-full.js';
import type { SqlStore } from '../src/store/sql-store.js';
import { type TestApp, testApp } from './support/app.js';

let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const upload = (app: TestApp, version: string) =>
  app.app.inject({
    method: 'POST',
    url: `/api/v1/artifacts?name=fw&version=${version}&hardware=hw`,
    headers: { ...app.admin, 'content-type': 'application/octet-stream' },
    payload: Buffer.alloc(256 * 1024, 7),
  });

describe('a full disk', () => {
  it('under the blob store: the upload answers 507 STORAGE_FULL and leaves no release', async () => {
    // Every temp file is /dev/full, whose every write fails with ENOSPC.
    t = await testApp(undefined, {
      blobs: (dataDir, clock) => new FsBlobStore(dataDir, clock, () => open('/dev/full', 'w')),
    });
    const r = await upload(t, '1.0.0');
    expect(r.statusCode, r.body).toBe(507);
    expect(r.json()).toEqual({
      error: { code: 'STORAGE_FULL', message: expect.stringMatching(/the data folder's disk is full/) },
    });
    expect(await t.store.releases.list()).toEqual([]);
  });

  it('under SQLite: writes answer 507 STORAGE_FULL, and work again once there is room', async () => {
    t = await testApp();
    const db = (t.store as SqlStore).db;
    const pages = await sql<{ page_count: number }>`pragma page_count`.execute(db);
    // The database may not grow by a page: the next write that needs one fails with SQLITE_FULL.
    await sql.raw(`pragma max_page_count = ${pages.rows[0]!.page_count}`).execute(db);
    const devices = Array.from({ length: 2_000 }, (_, i) => ({
      id: `dev-${i}`,
      hardware_type: 'hw',
      tags: { note: 'x'.repeat(200) },
    }));
    const importDevices = () =>
      t!.app.inject({
        method: 'POST',
        url: '/api/v1/devices/import',
        headers: t!.admin,
        payload: { devices },
      });
    const imported = await importDevices();
    expect(imported.statusCode, imported.body).toBe(507);
    expect(imported.json().error).toMatchObject({
      code: 'STORAGE_FULL',
      message: expect.stringMatching(/the data folder's disk is full/),
    });

    await sql.raw('pragma max_page_count = 1073741823').execute(db);
    const again = await importDevices();
    expect(again.statusCode, again.body).toBe(200);
  });

  it('on the PostgreSQL server (SQLSTATE 53100) is named too, through error causes', () => {
    const pgError = Object.assign(new Error('could not extend file'), { code: '53100' });
    expect(storageFull(new Error('query failed', { cause: pgError }))?.message).toMatch(
      /the database server's disk is full/,
    );
    expect(storageFull(Object.assign(new Error('x'), { code: 'EACCES' }))).toBeUndefined();
  });
});
