/**
 * Browser-facing protections on every answer: the dashboard and /docs hold an operator's token in the page,
 * so they must not be framed (clickjacking), run scripts from anywhere but this server (no inline script:
 * an injected one could read the token), leak their URL to other sites, or have a JSON answer sniffed as HTML.
 * Set at onRequest so hijacked replies (downloads) carry them too.
 */
import type { FastifyInstance } from 'fastify';

const policy = (directives: Record<string, string>) =>
  Object.entries(directives)
    .map(([name, value]) => `${name} ${value}`)
    .join('; ');

const LOCKED = { 'base-uri': "'none'", 'object-src': "'none'", 'frame-ancestors': "'none'" };

/** The built dashboard: its own scripts, styles and API only (Vite's build has no inline script). */
export const DASHBOARD_CSP = policy({
  'default-src': "'self'",
  'script-src': "'self'",
  'style-src': "'self'",
  'img-src': "'self' data:",
  'connect-src': "'self'",
  'form-action': "'self'",
  ...LOCKED,
});

/** Swagger UI sets inline styles on the elements it renders; its scripts are files like the dashboard's. */
export const DOCS_CSP = policy({
  'default-src': "'self'",
  'script-src': "'self'",
  'style-src': "'self' 'unsafe-inline'",
  'img-src': "'self' data:",
  'connect-src': "'self'",
  'form-action': "'self'",
  ...LOCKED,
});

/** JSON, event streams and downloads are never documents: nothing in them may run or load. */
export const API_CSP = policy({ 'default-src': "'none'", ...LOCKED });

function cspFor(url: string): string {
  if (url.startsWith('/api/') || url.startsWith('/healthz')) return API_CSP;
  if (url === '/docs' || url.startsWith('/docs/') || url.startsWith('/docs?')) return DOCS_CSP;
  return DASHBOARD_CSP;
}

const headersWith = (csp: string) => ({
  'content-security-policy': csp,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
});
const HEADERS = new Map([API_CSP, DOCS_CSP, DASHBOARD_CSP].map((csp) => [csp, headersWith(csp)]));

export function installSecurityHeaders(app: FastifyInstance): void {
  // A callback hook, not an async one: no promise per request on the heartbeat's path.
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(HEADERS.get(cspFor(request.url))!);
    done();
  });
}
