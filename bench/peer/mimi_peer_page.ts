import type { PeerMessage, PeerRequest, PeerSetup, PeerTiming } from './protocol.ts';

// Starts the peer-benchmark Worker with the request given as ?request=<json> and exposes the
// results on window for the Node driver (bench/mimi_peer.ts).
declare global {
  interface Window {
    __peer: { done: boolean; error: string | null; adapter: unknown; setups: PeerSetup[]; timings: PeerTiming[]; log: string[] };
  }
}
const state: Window['__peer'] = { done: false, error: null, adapter: null, setups: [], timings: [], log: [] };
window.__peer = state;
const logEl = document.getElementById('log')!;
const log = (t: string) => {
  state.log.push(t);
  logEl.textContent += `${t}\n`;
};
const request = JSON.parse(new URLSearchParams(location.search).get('request') ?? 'null') as PeerRequest | null;
if (!request) {
  state.error = 'no ?request= parameter';
  state.done = true;
} else {
  const worker = new Worker(new URL('./mimi_peer_worker.ts', import.meta.url), { type: 'module' });
  worker.onmessage = (e: MessageEvent<PeerMessage>) => {
    const m = e.data;
    if (m.type === 'log') log(m.text);
    else if (m.type === 'adapter') state.adapter = m.adapter;
    else if (m.type === 'setup') {
      state.setups.push(m.setup);
      log(`setup ${m.setup.set} ${m.setup.side}: ${m.setup.loadMs.toFixed(0)} ms ${m.setup.detail}`);
    } else if (m.type === 'timing') {
      state.timings.push(m.timing);
      log(`${m.timing.set} ${m.timing.side} ${m.timing.op}: median ${m.timing.medianMs.toFixed(1)} ms, ${m.timing.ok ? 'ok' : 'MISMATCH'} (${m.timing.check})`);
    } else if (m.type === 'done') {
      state.error = m.error ?? null;
      state.done = true;
    }
  };
  worker.onerror = (e) => {
    state.error = `worker error: ${e.message}`;
    state.done = true;
  };
  worker.postMessage(request);
}
