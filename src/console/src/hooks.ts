// Small hooks: polling the API and client-side routing under /console/.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api.js';

export const pollIntervalMs = 1500;

export interface Polled<T> {
  data: T | undefined;
  error: ApiError | undefined;
  /** Fetch now (after an action), without waiting for the next tick. */
  refresh: () => Promise<void>;
}

/**
 * Calls `fetcher` now and then every `intervalMs` while the tab is visible; one call at
 * a time, so a slow server is never asked twice at once. `key` restarts it.
 */
export function usePoll<T>(fetcher: () => Promise<T>, key: string, intervalMs = pollIntervalMs): Polled<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<ApiError | undefined>(undefined);
  const fetcherRef = useRef(fetcher);
  fetcherRef.current = fetcher;
  const generation = useRef(0);
  const running = useRef(false);

  const refresh = useCallback(async () => {
    const mine = generation.current;
    running.current = true;
    try {
      const value = await fetcherRef.current();
      if (mine !== generation.current) return;
      setData(value);
      setError(undefined);
    } catch (caught) {
      if (mine !== generation.current) return;
      setError(caught instanceof ApiError ? caught : new ApiError(0, 'Error', String(caught)));
    } finally {
      running.current = false;
    }
  }, []);

  useEffect(() => {
    generation.current += 1;
    setData(undefined);
    setError(undefined);
    void refresh();
    const timer = setInterval(() => {
      if (document.visibilityState === 'visible' && !running.current) void refresh();
    }, intervalMs);
    return () => {
      generation.current += 1;
      clearInterval(timer);
    };
  }, [key, intervalMs, refresh]);

  return { data, error, refresh };
}

export const basePath = '/console';

/** The path inside the console, e.g. "/" or "/queues/orders". */
export function useRoute(): string {
  const [route, setRoute] = useState(currentRoute());
  useEffect(() => {
    const update = (): void => setRoute(currentRoute());
    addEventListener('popstate', update);
    addEventListener('berth:navigate', update);
    return () => {
      removeEventListener('popstate', update);
      removeEventListener('berth:navigate', update);
    };
  }, []);
  return route;
}

function currentRoute(): string {
  const path = location.pathname.startsWith(basePath) ? location.pathname.slice(basePath.length) : location.pathname;
  return path === '' ? '/' : path;
}

export function navigate(route: string): void {
  history.pushState(null, '', basePath + route);
  dispatchEvent(new Event('berth:navigate'));
  scrollTo(0, 0);
}
