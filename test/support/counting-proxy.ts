/**
 * A TCP proxy between an agent and the server that counts the bytes the server sends and can slow them
 * down: how a test proves a resumed download does not fetch finished bytes again.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface CountingProxy {
  url: string;
  /** Bytes sent by the server to clients so far. */
  bytesFromServer(): number;
  close(): Promise<void>;
}

export async function countingProxy(
  target: URL,
  bytesPerSecond = Number.POSITIVE_INFINITY,
): Promise<CountingProxy> {
  let counted = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    const started = Date.now();
    let sent = 0;
    // Paused while the client has not taken what it was sent (backpressure) or while ahead of the rate:
    // what is counted is then what the client could read, not what piled up in this proxy.
    let throttled = false;
    let backedUp = false;
    const resume = () => {
      if (!throttled && !backedUp) upstream.resume();
    };
    client.on('drain', () => {
      backedUp = false;
      resume();
    });
    upstream.on('data', (chunk: Buffer) => {
      counted += chunk.length;
      sent += chunk.length;
      if (!client.write(chunk)) {
        backedUp = true;
        upstream.pause();
      }
      const ahead = sent / bytesPerSecond - (Date.now() - started) / 1000;
      if (ahead > 0) {
        throttled = true;
        upstream.pause();
        setTimeout(() => {
          throttled = false;
          resume();
        }, ahead * 1000);
      }
    });
    client.pipe(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    bytesFromServer: () => counted,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
