import type { CaseResult, RunnerMessage } from './protocol.ts';

// Starts the module Worker named by ?suite= and collects its results for the Node driver.
declare global {
  interface Window {
    __results: CaseResult[];
    __adapter: unknown;
    __done: boolean;
    __error: string | null;
  }
}
window.__results = [];
window.__done = false;
window.__error = null;
const log = document.getElementById('log')!;
const params = new URLSearchParams(location.search);
const worker = new Worker(new URL('./runner_worker.ts', import.meta.url), { type: 'module' });
worker.onmessage = (e: MessageEvent<RunnerMessage>) => {
  const m = e.data;
  if (m.type === 'adapter') window.__adapter = m.adapter;
  else if (m.type === 'result') {
    window.__results.push(m.result);
    log.textContent += `${m.result.ok ? 'ok  ' : 'FAIL'} ${m.result.suite} ${m.result.name} ${m.result.ok ? '' : m.result.message}\n`;
  } else if (m.type === 'done') {
    window.__error = m.error ?? null;
    window.__done = true;
  }
};
worker.onerror = (e) => {
  window.__error = `worker error: ${e.message}`;
  window.__done = true;
};
worker.postMessage({ suite: params.get('suite'), fixturesUrl: params.get('fixtures') ?? '' });
