/** The shell: sign-in gate, navigation, and the page for the current route. */
import { useEffect, useState } from 'preact/hooks';
import type { SessionJsonType } from '../../src/protocol/access.js';
import { api } from './api';
import { operatorZone } from './format';
import { AlertsPage } from './pages/Alerts';
import { ArtifactsPage } from './pages/Artifacts';
import { DevicePage } from './pages/Device';
import { DevicesPage } from './pages/Devices';
import { EventsPage } from './pages/Events';
import { OverviewPage } from './pages/Overview';
import { SignIn } from './pages/SignIn';
import { NewRolloutPage } from './rollouts/NewRollout';
import { RolloutPage } from './rollouts/Rollout';
import { RolloutsPage } from './rollouts/Rollouts';
import { type Route, useRoute } from './router';
import { can, clearSession, getPrincipal, onSessionChange, setSession } from './session';

/** The pages, each shown to a role with the permission it reads by. */
const NAV = [
  ['', 'Overview', 'devices.read'],
  ['devices', 'Devices', 'devices.read'],
  ['rollouts', 'Rollouts', 'rollouts.read'],
  ['events', 'Events', 'events.read'],
  ['alerts', 'Alerts', 'events.read'],
  ['artifacts', 'Artifacts', 'releases.read'],
] as const;

function page(route: Route) {
  const [first = '', second, third] = route.segments;
  switch (first) {
    case '':
      return <OverviewPage />;
    case 'devices':
      // Keyed by the link's filter: following a link to another filter starts afresh, while typing (which
      // rewrites the link in place, without a navigation) keeps the page as it is.
      return second ? (
        <DevicePage id={second} />
      ) : (
        <DevicesPage key={route.query.get('filter') ?? ''} query={route.query} />
      );
    case 'events':
      return <EventsPage query={route.query} />;
    case 'alerts':
      return <AlertsPage />;
    case 'artifacts':
      return <ArtifactsPage />;
    case 'rollouts':
      if (second === 'new') {
        if (can('rollouts.create')) return <NewRolloutPage />;
        return (
          <div class="page">
            <h1>New rollout</h1>
            <p>Your role may not start rollouts (it needs the permission rollouts.create).</p>
          </div>
        );
      }
      return second ? <RolloutPage id={second} tab={third} /> : <RolloutsPage />;
    default:
      return (
        <div class="page">
          <h1>Not found</h1>
          <p>
            There is no page here. <a href="#/">Go to the overview</a>.
          </p>
        </div>
      );
  }
}

/** Ends the session on the server (a cookie session; a token is only forgotten), then here. */
async function signOut(): Promise<void> {
  if (getPrincipal()?.kind === 'session') {
    await api('/api/v1/session', { method: 'DELETE' }).catch(() => undefined);
  }
  clearSession();
}

export function App() {
  const [principal, setPrincipal] = useState(getPrincipal);
  // On load, the session cookie (or the tab's token) may already sign the user in: asked once.
  const [checking, setChecking] = useState(true);
  const route = useRoute();
  useEffect(() => onSessionChange(() => setPrincipal(getPrincipal())), []);
  useEffect(() => {
    // Settled either way: a 401 has cleared the session, and the sign-in form shows.
    api<SessionJsonType>('/api/v1/session')
      .then((session) => setSession(session))
      .catch(() => undefined)
      .finally(() => setChecking(false));
  }, []);
  // Each page names itself; moving focus to the main region tells screen readers the page changed.
  const section = route.segments[0] ?? '';
  useEffect(() => {
    const label = NAV.find(([path]) => path === section)?.[1] ?? 'FleetD';
    document.title = `${label} · FleetD`;
  }, [section]);

  if (!principal) return checking ? null : <SignIn />;
  return (
    <div class="shell">
      {/* A button, not a link to #main: the hash is the router's. */}
      <button type="button" class="skip" onClick={() => document.getElementById('main')?.focus()}>
        Skip to content
      </button>
      <header class="topbar">
        <span class="brand">FleetD</span>
        <nav aria-label="Main">
          <ul>
            {NAV.filter(([, , needs]) => can(needs)).map(([path, label]) => (
              <li key={path}>
                <a href={`#/${path}`} aria-current={section === path ? 'page' : undefined}>
                  {label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span class="zone" title="Times are shown in this time zone">
          {operatorZone}
        </span>
        <span class="who" data-testid="signed-in-as" title={`role ${principal.role}`}>
          {principal.name} ({principal.role})
        </span>
        <button type="button" class="link" onClick={() => void signOut()}>
          Sign out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        {page(route)}
      </main>
    </div>
  );
}
