/** A real HTTP server on 127.0.0.1 that records webhook requests and answers as the test says. */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  headers: IncomingHttpHeaders;
  body: string;
  eventIds: number[];
  types: string[];
  status: number;
}

/** A status to answer with, or `hold`: the request stays open until `release()`. */
export type Answer = number | 'hold';

export interface Receiver {
  url: string;
  port: number;
  requests: ReceivedRequest[];
  /** Requests received and not yet answered. */
  open: number;
  /** The most requests that were open at once. */
  maxOpen: number;
  /** The answer for each next request, in order; once used up, 200. */
  answers: Answer[];
  /** Run (and awaited) before the next request is answered, once. */
  beforeAnswer: (() => Promise<void>) | undefined;
  /** Answers every held request with this status. */
  release(status?: number): void;
  /** Ids of the events in requests answered with a 2xx, in the order received. */
  acknowledged(): number[];
  close(): Promise<void>;
}

export async function startReceiver(port = 0): Promise<Receiver> {
  const held: Array<(status: number) => void> = [];
  let server: Server;
  const receiver: Receiver = {
    url: '',
    port: 0,
    requests: [],
    open: 0,
    maxOpen: 0,
    answers: [],
    beforeAnswer: undefined,
    release(status = 200) {
      for (const answer of held.splice(0)) answer(status);
    },
    acknowledged() {
      return receiver.requests.filter((r) => r.status >= 200 && r.status < 300).flatMap((r) => r.eventIds);
    },
    close() {
      receiver.release(503);
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
  server = createServer((request, response) => {
    receiver.open += 1;
    receiver.maxOpen = Math.max(receiver.maxOpen, receiver.open);
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', async () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const events = (JSON.parse(body) as { events: Array<{ id: number; type: string }> }).events;
      const answer = receiver.answers.shift() ?? 200;
      const before = receiver.beforeAnswer;
      receiver.beforeAnswer = undefined;
      await before?.();
      const reply = (status: number) => {
        // Recorded before the answer leaves, so a test that sees the dispatcher finish sees the request.
        receiver.requests.push({
          headers: request.headers,
          body,
          eventIds: events.map((e) => e.id),
          types: events.map((e) => e.type),
          status,
        });
        receiver.open -= 1;
        response.writeHead(status, { 'content-type': 'text/plain' }).end(String(status));
      };
      if (answer === 'hold') held.push(reply);
      else reply(answer);
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  receiver.port = (server.address() as AddressInfo).port;
  receiver.url = `http://127.0.0.1:${receiver.port}/hook`;
  return receiver;
}
