/**
 * The server-sent event stream, read with fetch rather than EventSource: the server names each message by
 * its event type (`event: update.failed`), and EventSource only hands named messages to listeners registered
 * for that exact name, so a page could never see a type it did not know in advance (rollout.* types are
 * still being added). fetch also sends an API token as a header, keeping it out of URLs and access logs.
 */
import { type Query, withQuery } from './api';
import { getToken } from './session';
import type { FleetEvent } from './types';

const RETRY_MS = 2000;

export type StreamState = 'connecting' | 'live' | 'reconnecting';

export interface StreamOptions {
  query: Query;
  /** Resume after this event id; default: from now on. */
  after?: number | undefined;
  onEvent(event: FleetEvent): void;
  onState?(state: StreamState): void;
}

/** Opens the stream and keeps it open (reconnecting after the last id seen) until the returned stop(). */
export function openEventStream(options: StreamOptions): () => void {
  const controller = new AbortController();
  let lastId = options.after;

  const readOnce = async () => {
    const token = getToken();
    const response = await fetch(withQuery('/api/v1/events/stream', { ...options.query, after: lastId }), {
      // Without a token, the session cookie goes along on its own (same origin).
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), accept: 'text/event-stream' },
      signal: controller.signal,
    });
    if (!response.ok || !response.body) throw new Error(`event stream: HTTP ${response.status}`);
    options.onState?.('live');
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block
          .split('\n')
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).trimStart())
          .join('\n');
        if (data) {
          const event = JSON.parse(data) as FleetEvent;
          lastId = event.id;
          options.onEvent(event);
        }
        end = buffer.indexOf('\n\n');
      }
    }
  };

  void (async () => {
    options.onState?.('connecting');
    while (!controller.signal.aborted) {
      try {
        await readOnce();
      } catch {
        // Dropped connection or a server restart: try again below, resuming after the last id.
      }
      if (controller.signal.aborted) return;
      options.onState?.('reconnecting');
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
  })();
  return () => controller.abort();
}
