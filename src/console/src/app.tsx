// The console shell: session check (login with an access key pair when the server has
// auth on), navigation, and the page for the current route.
//
// States: checking -> (login <-> ready). A 401 from any API call returns to login.
import { useEffect, useState } from 'preact/hooks';
import { api, clearCredentials, setCredentials, setUnauthorizedListener, type Session } from './api.js';
import { navigate, useRoute } from './hooks.js';
import { QueuesPage } from './queues-page.js';
import { QueuePage } from './queue-page.js';
import { ClusterPage } from './cluster-page.js';
import { ServerPage } from './server-page.js';

export function Link(props: { to: string; children: preact.ComponentChildren; class?: string; label?: string }) {
  return (
    <a
      href={`/console${props.to}`}
      class={props.class}
      aria-label={props.label}
      onClick={(event) => {
        if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
        event.preventDefault();
        navigate(props.to);
      }}
    >
      {props.children}
    </a>
  );
}

export function App() {
  const [session, setSession] = useState<Session | undefined>(undefined);
  const [sessionError, setSessionError] = useState<string | undefined>(undefined);
  const route = useRoute();

  const checkSession = async (): Promise<void> => {
    try {
      setSession(await api.session());
      setSessionError(undefined);
    } catch (error) {
      setSessionError(String(error instanceof Error ? error.message : error));
    }
  };

  useEffect(() => {
    setUnauthorizedListener(() => setSession((current) => (current === undefined ? current : { ...current, authenticated: false })));
    void checkSession();
  }, []);

  if (session === undefined) {
    return <main class="centered">{sessionError === undefined ? <p>Connecting…</p> : <p class="error" role="alert">Cannot reach the server: {sessionError}</p>}</main>;
  }
  if (!session.authenticated) return <Login onDone={checkSession} />;

  let page;
  let section: string;
  const queueMatch = /^\/queues\/([^/]+)$/.exec(route);
  if (queueMatch !== null && queueMatch[1] !== undefined) {
    page = <QueuePage name={decodeURIComponent(queueMatch[1])} />;
    section = 'queues';
  } else if (route === '/cluster') {
    page = <ClusterPage />;
    section = 'cluster';
  } else if (route === '/server') {
    page = <ServerPage />;
    section = 'server';
  } else {
    page = <QueuesPage />;
    section = 'queues';
  }

  return (
    <div class="shell">
      <header class="top">
        <Link to="/" class="brand" label="Berth console home">
          Berth
        </Link>
        <nav aria-label="Sections">
          <Link to="/" class={section === 'queues' ? 'active' : ''}>Queues</Link>
          <Link to="/server" class={section === 'server' ? 'active' : ''}>Server</Link>
          <Link to="/cluster" class={section === 'cluster' ? 'active' : ''}>Cluster</Link>
        </nav>
        <span class="who">
          {session.region} · {session.accountId}
          {session.authRequired && (
            <button
              type="button"
              class="link"
              onClick={() => {
                clearCredentials();
                void checkSession();
              }}
            >
              Sign out {session.accessKeyId ?? ''}
            </button>
          )}
        </span>
      </header>
      <main>{page}</main>
    </div>
  );
}

function Login(props: { onDone: () => Promise<void> }) {
  const [accessKeyId, setAccessKeyId] = useState('');
  const [secretAccessKey, setSecretAccessKey] = useState('');
  const [failed, setFailed] = useState(false);
  return (
    <main class="centered">
      <form
        class="card login"
        aria-label="Sign in"
        onSubmit={async (event) => {
          event.preventDefault();
          setCredentials(accessKeyId.trim(), secretAccessKey);
          const session = await api.session().catch(() => undefined);
          if (session?.authenticated === true) {
            setFailed(false);
            await props.onDone();
          } else {
            clearCredentials();
            setFailed(true);
          }
        }}
      >
        <h1>Berth console</h1>
        <p class="muted">Sign in with an access key pair the server accepts.</p>
        <label>
          Access key id
          <input name="accessKeyId" autocomplete="username" value={accessKeyId} onInput={(event) => setAccessKeyId(event.currentTarget.value)} required />
        </label>
        <label>
          Secret access key
          <input name="secretAccessKey" type="password" autocomplete="current-password" value={secretAccessKey} onInput={(event) => setSecretAccessKey(event.currentTarget.value)} required />
        </label>
        {failed && <p class="error" role="alert">The server did not accept that key pair.</p>}
        <button type="submit">Sign in</button>
      </form>
    </main>
  );
}
