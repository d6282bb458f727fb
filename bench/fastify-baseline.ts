/**
 * A second baseline for the heartbeat benchmark: the smallest Fastify app that answers the same route with
 * the same body schema, and does nothing else (no logger, no authentication, no storage). It shows what the
 * framework itself costs, so the heartbeat's own work can be told apart from it.
 */
import Fastify from 'fastify';
import { HeartbeatBody } from '../src/protocol/device-api.js';

const app = Fastify({ logger: false });
app.post('/api/device/v1/heartbeat', { schema: { body: HeartbeatBody } }, async () => ({
  pending_updates: [],
  next_heartbeat: 300,
}));
const url = await app.listen({ port: 0, host: '127.0.0.1' });
console.log(`fastify baseline listening on ${url}`);
process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
