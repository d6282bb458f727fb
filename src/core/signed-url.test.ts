import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { checkSignedPath, signPath } from './signed-url.js';

const SECRET = 'a-long-random-secret-from-a-file';
const PATH = '/cache/v1/artifacts/ab12';
const NOW = Date.parse('2026-12-06T10:00:00Z');

const queryOf = (url: string) => Object.fromEntries(new URL(url, 'http://x').searchParams);

describe('signed artifact URLs', () => {
  it('nginx form: the md5 is what `openssl md5 -binary | base64` gives nginx’s secure_link_md5 string', () => {
    const url = signPath('nginx', PATH, NOW + 3_600_000, SECRET);
    const { md5, expires } = queryOf(url);
    // nginx compares with the URL-safe base64 of MD5("$secure_link_expires$uri $secret"), no padding.
    const openssl = execFileSync('sh', [
      '-c',
      `printf '%s' "$1" | openssl md5 -binary | base64`,
      'sh',
      `${expires}${PATH} ${SECRET}`,
    ])
      .toString()
      .trim()
      .replaceAll('+', '-')
      .replaceAll('/', '_')
      .replace(/=+$/, '');
    expect(md5).toBe(openssl);
    expect(checkSignedPath('nginx', PATH, queryOf(url), NOW, SECRET)).toBe('ok');
  });

  for (const form of ['nginx', 'hmac'] as const) {
    it(`${form}: refuses an expired link, another path, another secret, and a link without a signature`, () => {
      const url = signPath(form, PATH, NOW + 60_000, SECRET);
      expect(checkSignedPath(form, PATH, queryOf(url), NOW, SECRET)).toBe('ok');
      expect(checkSignedPath(form, PATH, queryOf(url), NOW + 60_000, SECRET)).toBe('expired');
      expect(checkSignedPath(form, '/cache/v1/artifacts/cd34', queryOf(url), NOW, SECRET)).toBe(
        'bad_signature',
      );
      expect(checkSignedPath(form, PATH, queryOf(url), NOW, 'another-secret')).toBe('bad_signature');
      const later = { ...queryOf(url), expires: String(Math.floor(NOW / 1000) + 86_400) };
      expect(checkSignedPath(form, PATH, later, NOW, SECRET)).toBe('bad_signature');
      expect(checkSignedPath(form, PATH, {}, NOW, SECRET)).toBe('missing');
    });
  }
});
