import { describe, expect, it } from 'vitest';
import { errorReply } from '../protocol/mqtt.js';
import { MAX_PAYLOAD_BYTES, parseRequest } from './messages.js';

const json = (v: unknown) => Buffer.from(JSON.stringify(v));

describe('MQTT payloads', () => {
  it('takes the HTTP body with the credential and request id beside it', () => {
    const parsed = parseRequest(
      'heartbeat',
      json({ device_id: 'a', battery: 50, credential: 'c', request_id: 7 }),
      {},
    );
    expect(parsed).toEqual({
      ok: true,
      request: { kind: 'heartbeat', credential: 'c', requestId: 7, body: { device_id: 'a', battery: 50 } },
    });
  });

  it('takes the credential from an MQTT 5 user property', () => {
    const parsed = parseRequest('heartbeat', json({ device_id: 'a' }), {
      Authorization: 'Bearer a.fld_device_x',
    });
    expect(parsed.ok && parsed.request.credential).toBe('a.fld_device_x');
  });

  it('refuses what HTTP refuses, keeping the request id for the answer', () => {
    const bad = parseRequest(
      'reports',
      json({ update_id: 'u', seq: 0, state: 'downloading', request_id: 'r' }),
      {},
    );
    expect(bad.ok).toBe(false);
    if (!bad.ok) {
      expect(bad.requestId).toBe('r');
      expect(errorReply(bad.requestId, bad.error)).toMatchObject({
        type: 'error',
        request_id: 'r',
        error: { code: 'VALIDATION', message: expect.stringContaining('payload.seq') },
      });
    }
    const unknown = parseRequest('heartbeat', json({ device_id: 'a', extra: true }), {});
    expect(!unknown.ok && unknown.error.message).toMatch(/unknown field "extra"/);
  });

  it('answers garbage with an error, never an exception', () => {
    for (const payload of [
      Buffer.from('{'),
      Buffer.from('[]'),
      Buffer.from('null'),
      Buffer.alloc(MAX_PAYLOAD_BYTES + 1),
    ]) {
      const parsed = parseRequest('heartbeat', payload, undefined);
      expect(parsed.ok).toBe(false);
    }
    expect(parseRequest('heartbeat', Buffer.from('{'), undefined)).toMatchObject({
      error: { code: 'MALFORMED_JSON' },
    });
  });

  it('refuses a NUL in any string and a seq beyond an int4, as HTTP does', () => {
    const nul = parseRequest('heartbeat', json({ device_id: 'a', firmware_version: '1\u0000' }), undefined);
    expect(!nul.ok && nul.error.message).toBe(
      'payload.firmware_version must not contain a NUL character (\\u0000)',
    );
    const seq = parseRequest(
      'reports',
      json({ update_id: 'u', seq: 3_000_000_000, state: 'downloading' }),
      undefined,
    );
    expect(!seq.ok && seq.error.code).toBe('VALIDATION');
  });
});
