/**
 * The baseline for the TLS handshake benchmark: a bare node:https server with FleetD's certificate, asking for
 * and verifying client certificates from the FleetD CA as FleetD's listener does, that reads the request body
 * and answers what FleetD answers, with nothing else. Run as a child process, like the real server:
 * `node dist/bench/bare-tls-server.js CERT KEY CA`.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';

const [certFile, keyFile, caFile] = process.argv.slice(2);
if (!certFile || !keyFile || !caFile) throw new Error('usage: bare-tls-server CERT KEY CA');

const reply = Buffer.from(JSON.stringify({ pending_updates: [], next_heartbeat: 300 }));

const server = createServer(
  {
    cert: readFileSync(certFile),
    key: readFileSync(keyFile),
    ca: readFileSync(caFile),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
  },
  (request, response) => {
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
    });
    request.on('end', () => {
      response.writeHead(size > 0 ? 200 : 400, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': reply.length,
      });
      response.end(reply);
    });
  },
);

server.keepAliveTimeout = 72_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address && typeof address === 'object')
    console.log(`bare TLS server listening on https://127.0.0.1:${address.port}`);
});
process.once('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
