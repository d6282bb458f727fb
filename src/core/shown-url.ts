/**
 * A URL as FleetD shows it in listings and events: without `user:password@` and with every query value
 * replaced, since either may be a receiver's secret. The stored URL keeps them; only requests use it.
 */
export function shownUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return '(not a URL)';
  }
  url.username = '';
  url.password = '';
  for (const key of new Set(url.searchParams.keys())) url.searchParams.set(key, 'redacted');
  return url.toString();
}
