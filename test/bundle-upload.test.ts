/**
 * A `bundle` release is checked at upload: an archive without a valid bundle.json, or missing a file it names,
 * is refused with 400 VALIDATION before any release is written; a good one is signed like any release.
 */
import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tar from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestApp, testApp } from './support/app.js';
import { tempDir } from './support/processes.js';
import { buildBundle } from './support/updaters.js';

let t: TestApp;
const work = tempDir('fleetd-bundle-upload-');
beforeAll(async () => {
  t = await testApp();
});
afterAll(() => t.close());

const upload = async (version: string, file: string) =>
  t.app.inject({
    method: 'POST',
    url: `/api/v1/artifacts?name=stack&version=${version}&type=bundle&hardware=box`,
    headers: { ...t.admin, 'content-type': 'application/octet-stream' },
    payload: await readFile(file),
  });

const component = { name: 'config', type: 'file', version: '1.0.0', file: 'app.conf' };

describe('bundle uploads', () => {
  it('signs a bundle whose description is valid and whose files are all there', async () => {
    const good = await buildBundle(work, 'good', { components: [component] }, { 'app.conf': 'x' });
    const answer = await upload('1.0.0', good);
    expect(answer.statusCode, answer.body).toBe(201);
    expect(answer.json()).toMatchObject({ type: 'bundle', name: 'stack', version: '1.0.0' });
  });

  it('refuses, before writing a release, a file named but missing, a bad description, no description, not a tar', async () => {
    const missing = await buildBundle(work, 'missing', { components: [component] }, {});
    const bad = await buildBundle(
      work,
      'bad',
      { components: [{ ...component, type: 'bundle' }] },
      { 'app.conf': 'x' },
    );
    writeFileSync(join(work, 'app.conf'), 'x');
    const bare = join(work, 'bare.tar.gz');
    await tar.c({ gzip: true, file: bare, cwd: work }, ['app.conf']);
    const notTar = join(work, 'not.tar');
    writeFileSync(notTar, 'not an archive at all, just some bytes '.repeat(40));
    const cases: Array<[string, RegExp]> = [
      [missing, /^type bundle: bundle\.json names files the archive lacks: app\.conf$/],
      [bad, /^type bundle: bundle\.json: components\[0\]\.type: must be one of /],
      [bare, /^type bundle: a bundle must hold bundle\.json at its root$/],
      [notTar, /^type bundle: a bundle must (be a tar archive|hold bundle\.json)/],
    ];
    for (const [i, [file, message]] of cases.entries()) {
      const answer = await upload(`2.0.${i}`, file);
      expect(answer.statusCode, `${file}: ${answer.body}`).toBe(400);
      expect(answer.json().error.code).toBe('VALIDATION');
      expect(answer.json().error.message).toMatch(message);
    }
    expect((await t.store.releases.list()).map((r) => r.version)).toEqual(['1.0.0']);
  });
});
