/** Enrollment tokens over the operator API: a default expiry, listings without secrets, revocation, claims. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type TestApp, testApp } from './support/app.js';

let t: TestApp;
beforeEach(async () => {
  t = await testApp();
});
afterEach(async () => {
  await t.close();
});

const create = (payload: Record<string, unknown>) =>
  t.app.inject({ method: 'POST', url: '/api/v1/enrollment-tokens', headers: t.admin, payload });
const enroll = (token: string, id: string) =>
  t.app.inject({
    method: 'POST',
    url: '/api/device/v1/enroll',
    payload: { enrollment_token: token, device_id: id },
  });

describe('enrollment tokens', () => {
  it('expire after 7 days unless told otherwise', async () => {
    const r = await create({});
    expect(r.statusCode).toBe(201);
    expect(r.json().expires_at).toBe(new Date(t.clock.now() + 7 * 86_400_000).toISOString());
    t.clock.advance(7 * 86_400_000);
    const late = await enroll(r.json().token, 'late');
    expect(late.statusCode).toBe(401);
    expect(late.json().error.code).toBe('ENROLLMENT_INVALID');
  });

  it('are listed with their id, uses, expiry and state, never the token; a revoked one enrolls nobody', async () => {
    const a = (await create({ uses: 2, expires_in: '1d', tags: { site: 'x' } })).json();
    const b = (await create({ claim: 'tag.site = x' })).json();
    const listing = await t.app.inject({ method: 'GET', url: '/api/v1/enrollment-tokens', headers: t.admin });
    expect(listing.statusCode).toBe(200);
    expect(listing.body).not.toContain(a.token);
    expect(listing.body).not.toContain(b.token);
    expect(listing.body).not.toMatch(/fld_enroll_/);
    const byId = new Map(listing.json().tokens.map((x: { id: string }) => [x.id, x]));
    expect(byId.get(a.id)).toEqual({
      id: a.id,
      uses_left: 2,
      expires_at: a.expires_at,
      tags: { site: 'x' },
      claim: null,
      created_at: new Date(t.clock.now()).toISOString(),
      revoked_at: null,
      state: 'usable',
    });
    expect(byId.get(b.id)).toMatchObject({ claim: 'tag.site = x', state: 'usable' });

    const revoked = await t.app.inject({
      method: 'DELETE',
      url: `/api/v1/enrollment-tokens/${a.id}`,
      headers: t.admin,
    });
    expect(revoked.json()).toEqual({ revoked: a.id });
    expect((await enroll(a.token, 'd-1')).statusCode).toBe(401);
    const after = await t.app.inject({ method: 'GET', url: '/api/v1/enrollment-tokens', headers: t.admin });
    expect(after.json().tokens.find((x: { id: string }) => x.id === a.id).state).toBe('revoked');
    const again = await t.app.inject({
      method: 'DELETE',
      url: `/api/v1/enrollment-tokens/${a.id}`,
      headers: t.admin,
    });
    expect(again.statusCode).toBe(409);
    const unknown = await t.app.inject({
      method: 'DELETE',
      url: '/api/v1/enrollment-tokens/enr_nope',
      headers: t.admin,
    });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().error.code).toBe('NOT_FOUND');
  });

  it('claim imported devices only where their filter allows it', async () => {
    await t.app.inject({
      method: 'POST',
      url: '/api/v1/devices/import',
      headers: t.admin,
      payload: {
        devices: [
          { id: 'west-1', tags: { region: 'west' } },
          { id: 'east-1', tags: { region: 'east' } },
        ],
      },
    });
    const plain = (await create({})).json().token;
    const west = (await create({ claim: 'tag.region = west' })).json().token;

    const takeover = await enroll(plain, 'west-1');
    expect(takeover.statusCode).toBe(409);
    expect(takeover.json().error.code).toBe('DEVICE_EXISTS');
    expect((await enroll(west, 'east-1')).statusCode).toBe(409);
    expect((await enroll(plain, 'brand-new')).statusCode).toBe(201);
    const claimed = await enroll(west, 'west-1');
    expect(claimed.statusCode, claimed.body).toBe(201);

    const bad = await create({ claim: 'tag.region =' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('FILTER_SYNTAX');
    const blank = await create({ claim: '  ' });
    expect(blank.statusCode).toBe(400);
  });
});
