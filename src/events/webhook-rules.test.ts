import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  retryDelayMs,
  settledEvents,
  signature,
  signatureMatches,
  validateWebhookUrl,
  webhookMatches,
} from './webhook-rules.js';

describe('validateWebhookUrl', () => {
  it('accepts http and https URLs', () => {
    expect(validateWebhookUrl('https://hooks.example.com/fleetd?x=1')).toBe(
      'https://hooks.example.com/fleetd?x=1',
    );
    expect(validateWebhookUrl('http://10.0.0.5:8080')).toBe('http://10.0.0.5:8080/');
  });

  it('refuses anything else with the field named', () => {
    for (const [text, message] of [
      ['ftp://example.com/x', /url: "ftp:\/\/example.com\/x" must be an http:\/\/ or https:\/\/ URL/],
      ['file:///etc/passwd', /must be an http/],
      ['example.com/hook', /url: "example.com\/hook" is not a URL/],
      ['', /is not a URL/],
      ['https://example.com/#x', /fragment/],
    ] as const) {
      expect(() => validateWebhookUrl(text)).toThrow(message);
    }
    expect(() => validateWebhookUrl('gopher://x', 'body.url')).toThrow(/^body\.url: /);
  });
});

describe('webhookMatches', () => {
  const event = (type: string, rolloutId: string | null = null, data = {}) => ({ type, rolloutId, data });
  it('matches every event without a filter, else any type prefix', () => {
    const all = { id: 'wh_1', types: [], rolloutId: null };
    expect(webhookMatches(all, event('device.status'))).toBe(true);
    const some = { id: 'wh_1', types: ['rollout.', 'update.failed'], rolloutId: null };
    expect(webhookMatches(some, event('rollout.paused'))).toBe(true);
    expect(webhookMatches(some, event('update.failed'))).toBe(true);
    expect(webhookMatches(some, event('update.installed'))).toBe(false);
    expect(webhookMatches(some, event('device.status'))).toBe(false);
  });

  it('limits to one rollout when asked', () => {
    const hook = { id: 'wh_1', types: ['update.'], rolloutId: 'ro_1' };
    expect(webhookMatches(hook, event('update.failed', 'ro_1'))).toBe(true);
    expect(webhookMatches(hook, event('update.failed', 'ro_2'))).toBe(false);
    expect(webhookMatches(hook, event('update.failed'))).toBe(false);
  });

  it('gives a test event to the webhook it names and to no other, whatever their filters', () => {
    const test = event('webhook.test', null, { webhook_id: 'wh_1' });
    expect(webhookMatches({ id: 'wh_1', types: ['rollout.'], rolloutId: 'ro_1' }, test)).toBe(true);
    expect(webhookMatches({ id: 'wh_2', types: [], rolloutId: null }, test)).toBe(false);
  });

  it('gives an audit entry only to a webhook whose filter names audit, never to a catch-all', () => {
    const entry = event('audit.entry');
    const hook = (types: string[]) => ({ id: 'wh_1', types, rolloutId: null });
    for (const types of [['audit'], ['audit.'], ['audit.entry'], ['rollout.', 'audit']]) {
      expect(webhookMatches(hook(types), entry)).toBe(true);
    }
    for (const types of [[], ['a'], ['au'], ['audit.entry.x'], ['auditing'], ['rollout.']]) {
      expect(webhookMatches(hook(types), entry)).toBe(false);
    }
  });
});

describe('retryDelayMs', () => {
  const policy = { baseMs: 1_000, maxMs: 60_000, jitter: 0.5 };
  it('doubles from the base up to the cap', () => {
    expect([1, 2, 3, 4, 6, 7, 100].map((n) => retryDelayMs(n, 0, policy))).toEqual([
      1_000, 2_000, 4_000, 8_000, 32_000, 60_000, 60_000,
    ]);
  });
  it('adds at most the jitter fraction', () => {
    expect(retryDelayMs(1, 0.999_999, policy)).toBe(1_500);
    expect(retryDelayMs(3, 0.5, policy)).toBe(5_000);
    expect(retryDelayMs(0, 0, policy)).toBe(1_000);
  });
});

describe('signature', () => {
  it('is the hex HMAC-SHA256 of the body, prefixed with sha256=', () => {
    const body = '{"events":[]}';
    const hex = createHmac('sha256', 'k').update(body).digest('hex');
    expect(signature('k', body)).toBe(`sha256=${hex}`);
    expect(signatureMatches('k', body, `sha256=${hex}`)).toBe(true);
    expect(signatureMatches('k', `${body} `, `sha256=${hex}`)).toBe(false);
    expect(signatureMatches('other', body, `sha256=${hex}`)).toBe(false);
    expect(signatureMatches('k', body, 'sha256=00')).toBe(false);
  });
});

describe('settledEvents', () => {
  const ids = (...list: number[]) => list.map((id) => ({ id }));
  const never = () => undefined;

  it('passes contiguous events through', () => {
    expect(settledEvents(4, ids(5, 6, 7), never, 0, 1_000)).toEqual({
      settled: ids(5, 6, 7),
      gap: undefined,
    });
    expect(settledEvents(4, [], never, 0, 1_000)).toEqual({ settled: [], gap: undefined });
  });

  it('stops before a missing id until it has been missing for the grace period', () => {
    expect(settledEvents(4, ids(5, 8, 9), never, 100, 1_000)).toEqual({
      settled: ids(5),
      gap: { from: 6, to: 7 },
    });
    expect(settledEvents(4, ids(7), () => 100, 1_099, 1_000)).toEqual({
      settled: [],
      gap: { from: 5, to: 6 },
    });
    expect(settledEvents(4, ids(7, 8), () => 100, 1_100, 1_000)).toEqual({
      settled: ids(7, 8),
      gap: undefined,
    });
  });

  it('takes gaps as final at once with no grace', () => {
    expect(settledEvents(0, ids(3, 9), never, 0, 0).settled).toEqual(ids(3, 9));
  });
});
