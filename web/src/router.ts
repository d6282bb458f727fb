/**
 * Hash routing (`#/devices/pos-nyc-001?filter=…`): the server serves one index.html and needs no fallback
 * route, and a page's state (filter, sort) lives in its link, so it can be bookmarked and shared.
 */
import { useEffect, useState } from 'preact/hooks';

export interface Route {
  /** Path segments, decoded: `#/devices/a%2Fb` → ['devices', 'a/b']. */
  segments: string[];
  query: URLSearchParams;
}

export function currentRoute(): Route {
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path = '/', search = ''] = hash.split('?', 2);
  return {
    segments: path
      .split('/')
      .filter(Boolean)
      .map((s) => decodeURIComponent(s)),
    query: new URLSearchParams(search),
  };
}

export function useRoute(): Route {
  const [route, setRoute] = useState(currentRoute);
  useEffect(() => {
    const update = () => setRoute(currentRoute());
    addEventListener('hashchange', update);
    return () => removeEventListener('hashchange', update);
  }, []);
  return route;
}

/** `href('devices', id)` → `#/devices/<id escaped>`, with an optional query. */
export function href(...parts: Array<string | Record<string, string | undefined>>): string {
  const query = new URLSearchParams();
  const segments: string[] = [];
  for (const part of parts) {
    if (typeof part === 'string') segments.push(encodeURIComponent(part));
    else for (const [k, v] of Object.entries(part)) if (v) query.set(k, v);
  }
  const q = query.toString();
  return `#/${segments.join('/')}${q ? `?${q}` : ''}`;
}

/** Changes the page's query without adding a history entry per keystroke. */
export function replaceQuery(values: Record<string, string | undefined>): void {
  const route = currentRoute();
  for (const [k, v] of Object.entries(values)) {
    if (v) route.query.set(k, v);
    else route.query.delete(k);
  }
  const q = route.query.toString();
  const path = `#/${route.segments.map(encodeURIComponent).join('/')}${q ? `?${q}` : ''}`;
  history.replaceState(null, '', path);
}
