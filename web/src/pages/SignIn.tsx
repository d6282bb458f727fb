/** Sign-in with an API token: checked against the API before it is kept for the session. */
import { useState } from 'preact/hooks';
import { setToken } from '../session';

export function SignIn() {
  const [value, setValue] = useState('');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const token = value.trim();
    if (!token) return setError('Enter an API token.');
    setBusy(true);
    setError(undefined);
    try {
      const response = await fetch('/api/v1/devices/count', {
        headers: { authorization: `Bearer ${token}` },
      });
      if (response.status === 401) throw new Error('This token is unknown or revoked.');
      if (!response.ok) throw new Error(`The server answered ${response.status}.`);
      setToken(token);
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="signin">
      <form onSubmit={submit} aria-labelledby="signin-title">
        <h1 id="signin-title">FleetD</h1>
        <p class="muted">Sign in with an API token.</p>
        <div class="field">
          <label for="token">API token</label>
          <input
            id="token"
            type="password"
            autocomplete="off"
            value={value}
            aria-invalid={error ? 'true' : 'false'}
            aria-describedby="token-help"
            onInput={(e) => setValue(e.currentTarget.value)}
          />
          <p id="token-help" class={error ? 'field-error' : 'field-hint'} role={error ? 'alert' : undefined}>
            {error ??
              'The admin token is printed when the server first starts and saved in fleetd-data/admin-token.'}
          </p>
        </div>
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <p class="muted small">The token is kept for this browser tab only.</p>
      </form>
    </main>
  );
}
