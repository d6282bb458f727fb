import { describe, expect, it } from 'vitest';
import { checkWebhookTarget, EgressRefused, isPrivateAddress, publicLookup } from './webhook-egress.js';

describe('isPrivateAddress', () => {
  it.each([
    '127.0.0.1',
    '127.255.0.9',
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '100.127.255.255',
    '0.0.0.0',
    '224.0.0.1',
    '255.255.255.255',
    '::1',
    '::',
    '::ffff:127.0.0.1',
    '::ffff:10.0.0.1',
    'fd00:ec2::254',
    'fc00::1',
    'fe80::1',
    'ff02::1',
  ])('%s is not public', (address) => {
    expect(isPrivateAddress(address)).toBe(true);
  });

  it.each(['8.8.8.8', '93.184.215.14', '172.32.0.1', '100.128.0.1', '192.169.0.1', '2606:4700::1111'])(
    '%s is public',
    (address) => {
      expect(isPrivateAddress(address)).toBe(false);
    },
  );
});

describe('checkWebhookTarget', () => {
  it.each([
    'http://127.0.0.1:8080/x',
    'http://2130706433/', // 127.0.0.1 spelled as one number
    'http://0x7f.1/',
    'http://[::1]/',
    'http://[::ffff:7f00:1]/',
    'http://169.254.169.254/latest/meta-data',
    'http://localhost:5432/',
    'http://LOCALHOST./',
    'http://api.localhost/',
  ])('refuses %s at registration', (text) => {
    expect(() => checkWebhookTarget(new URL(text))).toThrow(/--webhook-allow-private/);
  });

  it('leaves names to be checked after DNS, and accepts public addresses', () => {
    expect(() => checkWebhookTarget(new URL('https://hooks.example.com/x'))).not.toThrow();
    expect(() => checkWebhookTarget(new URL('http://93.184.215.14/x'))).not.toThrow();
  });
});

describe('publicLookup', () => {
  it('refuses a name that resolves only to loopback, after resolving it', async () => {
    for (const all of [false, true]) {
      const error = await new Promise<unknown>((resolve) => {
        publicLookup('localhost', { all }, (e) => resolve(e));
      });
      expect(error).toBeInstanceOf(EgressRefused);
      expect((error as Error).message).toMatch(/^address not allowed: localhost /);
    }
  });
});
