/**
 * Sign-in: a user's name and password (the server sets an HttpOnly session cookie), single sign-on through the
 * server's OpenID provider when it has one, or an API token checked
 * against the API before it is kept for the tab. The server's refusal (wrong password, locked out) is shown
 * as it says it.
 */
import { useEffect, useState } from 'preact/hooks';
import type { SessionJsonType } from '../../../src/protocol/access.js';
import { setSession } from '../session';

async function answerOf(response: Response): Promise<SessionJsonType> {
  const json = (await response.json().catch(() => null)) as
    | (SessionJsonType & { error?: { message?: string } })
    | null;
  if (!response.ok) throw new Error(json?.error?.message ?? `The server answered ${response.status}.`);
  return json as SessionJsonType;
}

export function SignIn() {
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [token, setTokenValue] = useState('');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  // Single sign-on is offered when the server has an OpenID provider configured.
  const [oidc, setOidc] = useState(false);
  useEffect(() => {
    fetch('/api/v1/session/options')
      .then((r) => (r.ok ? (r.json() as Promise<{ oidc: boolean }>) : { oidc: false }))
      .then((options) => setOidc(options.oidc))
      .catch(() => undefined);
  }, []);

  const attempt = async (e: Event, work: () => Promise<void>) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await work();
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };

  const withPassword = (e: Event) =>
    attempt(e, async () => {
      if (!name.trim() || !password) throw new Error('Enter your user name and password.');
      const response = await fetch('/api/v1/session', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: name.trim(), password }),
      });
      setSession(await answerOf(response), null);
    });

  const withToken = (e: Event) =>
    attempt(e, async () => {
      const value = token.trim();
      if (!value) throw new Error('Enter an API token.');
      const response = await fetch('/api/v1/session', { headers: { authorization: `Bearer ${value}` } });
      if (response.status === 401) throw new Error('This token is unknown or revoked.');
      setSession(await answerOf(response), value);
    });

  return (
    <main class="signin">
      <form onSubmit={withPassword} aria-labelledby="signin-title">
        <h1 id="signin-title">FleetD</h1>
        <p class="muted">Sign in with your user name and password.</p>
        <div class="field">
          <label for="signin-name">User name</label>
          <input
            id="signin-name"
            autocomplete="username"
            value={name}
            onInput={(e) => setName(e.currentTarget.value)}
          />
        </div>
        <div class="field">
          <label for="signin-password">Password</label>
          <input
            id="signin-password"
            type="password"
            autocomplete="current-password"
            value={password}
            aria-invalid={error ? 'true' : 'false'}
            aria-describedby="signin-help"
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
          <p id="signin-help" class={error ? 'field-error' : 'field-hint'} role={error ? 'alert' : undefined}>
            {error ?? 'An admin adds users with `fleetd users add`.'}
          </p>
        </div>
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        {oidc && (
          // A plain navigation: the provider's pages take over, and its redirect back signs in.
          <a class="button" href="/api/v1/oidc/login">
            Sign in with single sign-on
          </a>
        )}
      </form>
      <details class="signin-token">
        <summary>Sign in with an API token instead</summary>
        <form onSubmit={withToken} aria-label="Token sign-in">
          <div class="field">
            <label for="token">API token</label>
            <input
              id="token"
              type="password"
              autocomplete="off"
              value={token}
              aria-describedby="token-help"
              onInput={(e) => setTokenValue(e.currentTarget.value)}
            />
            <p id="token-help" class="field-hint">
              The admin token is printed when the server first starts and saved in fleetd-data/admin-token. It
              is kept for this browser tab only.
            </p>
          </div>
          <button type="submit" disabled={busy}>
            Sign in with token
          </button>
        </form>
      </details>
    </main>
  );
}
