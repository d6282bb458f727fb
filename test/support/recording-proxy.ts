/** An HTTP proxy in front of the server that remembers each request: how a test proves which calls went over HTTP. */
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';

export interface RecordingProxy {
  url: string;
  /** `METHOD path` of each request, in order. */
  seen: string[];
  close(): void;
}

export async function recordingProxy(target: string): Promise<RecordingProxy> {
  const seen: string[] = [];
  const upstream = new URL(target);
  const proxy: Server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    forward(upstream, req, res);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const address = proxy.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}`, seen, close: () => proxy.close() };
}

/** Passes one request on to `upstream` as it came, and its answer back. */
export function forward(upstream: URL, req: IncomingMessage, res: ServerResponse): void {
  const onward = request(
    { host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  onward.on('error', () => res.destroy());
  req.pipe(onward);
}
