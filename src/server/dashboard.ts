/**
 * Serves the web dashboard (built by Vite into `dist/web`) at `/`. The API, `/docs` and `/healthz` are
 * registered as exact routes, so they win over the static wildcard.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/** The package root: the nearest folder up with a package.json (same from src/ under vitest and from dist/). */
function packageRoot(from: string): string {
  let dir = from;
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) return from;
    dir = up;
  }
  return dir;
}

export const DEFAULT_WEB_ROOT = join(packageRoot(import.meta.dirname), 'dist', 'web');

export async function serveDashboard(app: FastifyInstance, root = DEFAULT_WEB_ROOT): Promise<void> {
  if (!existsSync(join(root, 'index.html'))) {
    // A server built without the dashboard (e.g. `tsc` alone) still answers `/` with something useful.
    app.get('/', { schema: { hide: true } }, async (_request, reply) =>
      reply
        .type('text/plain; charset=utf-8')
        .send('FleetD is running. The dashboard is not built: run `npm run build`. API docs: /docs\n'),
    );
    return;
  }
  await app.register(fastifyStatic, {
    root,
    prefix: '/',
    cacheControl: false,
    // Vite names assets by content hash: they never change. index.html must be revalidated to pick up a build.
    setHeaders(res, path) {
      res.setHeader(
        'cache-control',
        /[\\/]assets[\\/]/.test(path) ? 'public, max-age=31536000, immutable' : 'no-cache',
      );
    },
  });
}
