/**
 * The baseline for the heartbeat benchmark: a bare node:http server that reads the request body and
 * answers what FleetD answers, with no routing, validation, authentication or storage. Run as a child
 * process (`node dist/bench/bare-server.js`), like the real server, so each has its own core.
 */
import { createServer } from 'node:http';

const reply = Buffer.from(JSON.stringify({ pending_updates: [], next_heartbeat: 300 }));

const server = createServer((request, response) => {
  let size = 0;
  request.on('data', (chunk: Buffer) => {
    size += chunk.length;
  });
  request.on('end', () => {
    response.writeHead(size > 0 || request.method === 'GET' ? 200 : 400, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': reply.length,
    });
    response.end(reply);
  });
});

server.keepAliveTimeout = 72_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address && typeof address === 'object')
    console.log(`bare server listening on http://127.0.0.1:${address.port}`);
});
process.once('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
