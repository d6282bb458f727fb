/** The shell: sign-in gate, navigation, and the page for the current route. */
import { useEffect, useState } from 'preact/hooks';
import { operatorZone } from './format';
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
import { getToken, onTokenChange, setToken } from './session';

const NAV = [
  ['', 'Overview'],
  ['devices', 'Devices'],
  ['rollouts', 'Rollouts'],
  ['events', 'Events'],
  ['artifacts', 'Artifacts'],
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
    case 'artifacts':
      return <ArtifactsPage />;
    case 'rollouts':
      if (second === 'new') return <NewRolloutPage />;
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

export function App() {
  const [token, setTokenState] = useState(getToken);
  const route = useRoute();
  useEffect(() => onTokenChange(() => setTokenState(getToken())), []);
  // Each page names itself; moving focus to the main region tells screen readers the page changed.
  const section = route.segments[0] ?? '';
  useEffect(() => {
    const label = NAV.find(([path]) => path === section)?.[1] ?? 'FleetD';
    document.title = `${label} · FleetD`;
  }, [section]);

  if (!token) return <SignIn />;
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
            {NAV.map(([path, label]) => (
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
        <button type="button" class="link" onClick={() => setToken(null)}>
          Sign out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        {page(route)}
      </main>
    </div>
  );
}
