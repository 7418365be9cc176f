/**
 * The voice-assistant page (index.html): pick a model source, load it with progress, start the
 * microphone, show Moshi's words live, input/output level meters, the loop's metrics against the
 * 80 ms budget, and sampling settings. The engine runs in workers/engine_worker.ts; this page
 * only wires DOM to src/ui/engine_client.ts.
 *
 * Automation (e2e, tests/e2e/run_e2e.ts): query parameters select and start a model
 * (`?mimiConfig=URL&mimiWeights=URL&lmConfig=URL&lmWeights=URL[&tokenizer=URL][&condition=K=V]
 * [&temp=T&tempText=T&topK=N&topKText=N&seed=S]&autoload=1&autostart=1[&rawMic=1][&transport=packets]`), and `window.__solacelive`
 * exposes the state, metrics and counters (see `TestHook`).
 */
import { type ClientEvent, EngineClient, HUB_DEFAULTS } from './engine_client.ts';
import { DEFAULT_SAMPLING, type ModelSpec, type SamplingSettings } from '../engine/worker_api.ts';
import type { MetricsSnapshot, StepTimings } from '../engine/metrics.ts';
import { registerPwa } from './pwa.ts';
import { decodeWav } from '../audio/wav.ts';
import { resample } from '../audio/resample.ts';

/** What the page exposes for automation on `window.__solacelive`. */
export interface TestHook {
  state: 'idle' | 'loading' | 'ready' | 'running' | 'error';
  error: string | null;
  banners: string[];
  adapter: unknown;
  text: string;
  textPackets: number;
  metrics: MetricsSnapshot | null;
  /** Output samples the playback worklet consumed, and their RMS. */
  played: { samples: number; rms: number; underruns: number };
  captured: { samples: number; overruns: number };
  protocolErrors: number;
  /** 'shared' (SharedArrayBuffer rings) or 'packets' (AUDIO_CHUNK messages), once running. */
  transport: string;
  /** performance.now() when the microphone started, null before. */
  runStartedAt: number | null;
}

declare global {
  interface Window {
    __solacelive?: TestHook;
  }
}

const el = <T extends HTMLElement = HTMLElement>(root: ParentNode, sel: string): T => {
  const e = root.querySelector(sel);
  if (!e) throw new Error(`page markup is missing ${sel}`);
  return e as T;
};

const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

const MARKUP = `
<div class="banners"></div>
<div class="grid">
  <section class="card model">
    <h2>1 · Model</h2>
    <div class="tabs">
      <label><input type="radio" name="src" value="hub" checked> Hugging Face hub</label>
      <label><input type="radio" name="src" value="files"> Local files</label>
      <label><input type="radio" name="src" value="urls"> URLs</label>
    </div>
    <div class="source" data-src="hub">
      <label>Hub base URL <input type="url" name="hubBase"></label>
      <label>Moshi repository <input type="text" name="hubRepo"></label>
      <p class="hint">Downloads the released Mimi codec, the Moshi LM and the text tokenizer (about 15 GB for the bf16 7B model) and caches them in this browser.</p>
    </div>
    <div class="source" data-src="files" hidden>
      <label>Folder <input type="file" name="folder" webkitdirectory multiple></label>
      <label>…or files <input type="file" name="files" multiple accept=".json,.safetensors,.model"></label>
      <p class="hint">Needs a Mimi and a Moshi <code>.safetensors</code>, optionally their config <code>.json</code> files and the SentencePiece <code>.model</code>. Files are matched by name (mimi/tokenizer-… = Mimi, model/moshi = LM).</p>
    </div>
    <div class="source" data-src="urls" hidden>
      <label>Mimi config URL <input type="url" name="mimiConfig" placeholder="(optional: released Mimi)"></label>
      <label>Mimi weights URL <input type="url" name="mimiWeights"></label>
      <label>LM config URL <input type="url" name="lmConfig" placeholder="(optional: Moshi 7B)"></label>
      <label>LM weights URL <input type="url" name="lmWeights"></label>
      <label>Tokenizer URL <input type="url" name="tokenizer" placeholder="(optional: text shows token ids)"></label>
    </div>
    <div class="row"><button class="primary load">Load model</button><button class="cancel" hidden>Cancel</button></div>
    <progress class="progress" max="1" value="0" hidden></progress>
    <div class="status load-status" data-state="idle">No model loaded.</div>
  </section>
  <section class="card talk">
    <h2>2 · Talk</h2>
    <div class="row"><button class="primary mic" disabled>Start microphone</button><span class="status run-status"></span></div>
    <div class="row"><label>…or play a recording to Moshi <input type="file" name="talkFile" accept=".wav,audio/wav"></label><button class="file" disabled>Play file</button></div>
    <div class="meter"><span>input</span><div class="bar"><div class="fill in"></div></div><span class="in-db">–∞ dB</span></div>
    <div class="meter"><span>output</span><div class="bar"><div class="fill out"></div></div><span class="out-db">–∞ dB</span></div>
    <h2>Moshi says</h2>
    <div class="transcript" aria-live="polite"></div>
  </section>
  <section class="card sampling">
    <h2>Sampling</h2>
    <div class="row">
      <label>audio temp <input type="number" name="temp" step="0.05" min="0" max="2"></label>
      <label>text temp <input type="number" name="tempText" step="0.05" min="0" max="2"></label>
      <label>audio top-k <input type="number" name="topK" step="1" min="1"></label>
      <label>text top-k <input type="number" name="topKText" step="1" min="1"></label>
      <label>seed <input type="number" name="seed" step="1" min="0"></label>
    </div>
    <label>Condition (NAME=VALUE, models with conditioners) <input type="text" name="condition" placeholder="description=very_good"></label>
    <div class="row"><button class="apply">Apply</button><span class="hint">Temperature 0 is greedy. New settings apply at the next microphone start (a new conversation); the condition at the next load.</span></div>
  </section>
  <section class="card metrics">
    <h2>Loop metrics <span class="hint">(per 80 ms step)</span></h2>
    <div class="budget" title="last step against the 80 ms budget (the line)"><span class="enc"></span><span class="lm"></span><span class="dec"></span><span class="mark"></span></div>
    <div class="legend"><span><i style="background:#2a9d8f"></i>encode</span><span><i style="background:#e9c46a"></i>LM</span><span><i style="background:#e76f51"></i>decode</span><span class="budget-text"></span></div>
    <table class="metrics"><thead><tr><th>ms</th><th>last</th><th>p50</th><th>p95</th><th>max</th></tr></thead><tbody></tbody></table>
    <dl class="counters"></dl>
  </section>
</div>`;

/** Mounts the voice-assistant page into `root`. */
export function mountApp(root: HTMLElement): void {
  root.innerHTML = MARKUP;
  const hook: TestHook = {
    state: 'idle', error: null, banners: [], adapter: null, text: '', textPackets: 0, metrics: null,
    played: { samples: 0, rms: 0, underruns: 0 }, captured: { samples: 0, overruns: 0 }, protocolErrors: 0, transport: '', runStartedAt: null,
  };
  window.__solacelive = hook;
  const banners = el(root, '.banners');
  const banner = (title: string, msg: string, warn = false) => {
    const key = `${title}: ${msg}`;
    if (hook.banners.includes(key)) return;
    hook.banners.push(key);
    const d = document.createElement('div');
    d.className = warn ? 'banner warn' : 'banner';
    d.setAttribute('role', 'alert');
    const b = document.createElement('b');
    b.textContent = title;
    d.append(b, document.createTextNode(msg));
    banners.append(d);
  };
  const q = new URLSearchParams(location.search);
  const input = (name: string) => el<HTMLInputElement>(root, `[name="${name}"]`);
  input('hubBase').value = q.get('hubBase') ?? HUB_DEFAULTS.baseUrl;
  input('hubRepo').value = q.get('hubRepo') ?? HUB_DEFAULTS.repo;
  for (const k of ['mimiConfig', 'mimiWeights', 'lmConfig', 'lmWeights', 'tokenizer'] as const) {
    const v = q.get(k);
    if (v) input(k).value = new URL(v, location.href).href;
  }
  const sampling: SamplingSettings = { ...DEFAULT_SAMPLING };
  for (const k of ['temp', 'tempText', 'topK', 'topKText', 'seed'] as const) {
    const v = q.get(k);
    if (v !== null && v !== '' && Number.isFinite(Number(v))) sampling[k] = Number(v);
    input(k).value = String(sampling[k]);
  }
  input('condition').value = q.get('condition') ?? '';
  if (q.get('mimiWeights')) el<HTMLInputElement>(root, 'input[name="src"][value="urls"]').checked = true;

  const showSource = () => {
    const v = el<HTMLInputElement>(root, 'input[name="src"]:checked').value;
    root.querySelectorAll<HTMLElement>('.source').forEach((s) => (s.hidden = s.dataset.src !== v));
  };
  root.querySelectorAll<HTMLInputElement>('input[name="src"]').forEach((r) => (r.onchange = showSource));
  showSource();

  const loadBtn = el<HTMLButtonElement>(root, 'button.load');
  const cancelBtn = el<HTMLButtonElement>(root, 'button.cancel');
  const micBtn = el<HTMLButtonElement>(root, 'button.mic');
  const fileBtn = el<HTMLButtonElement>(root, 'button.file');
  const progress = el<HTMLProgressElement>(root, 'progress.progress');
  const loadStatus = el(root, '.load-status');
  const runStatus = el(root, '.run-status');
  const transcript = el(root, '.transcript');
  const setLoad = (state: string, text: string) => {
    loadStatus.dataset.state = state;
    loadStatus.textContent = text;
  };
  const fail = (where: string, e: unknown) => {
    const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    hook.state = 'error';
    hook.error = `${where}: ${msg}`;
    return msg;
  };

  // Environment checks: each missing capability gets its own banner.
  if (!('gpu' in navigator)) banner('No WebGPU.', ' This browser has no navigator.gpu. Use Chrome or Edge 113+ (on Linux: chrome://flags/#enable-unsafe-webgpu), or Safari 26+.');
  if (!crossOriginIsolated) banner('Not cross-origin isolated.', ' SharedArrayBuffer is off, so audio travels as AUDIO_CHUNK messages (more latency). Serve the page with COOP: same-origin and COEP: require-corp (npm start / npm run preview do).', true);
  if (!window.isSecureContext) banner('Insecure context.', ' The microphone needs https:// or http://localhost.');

  let client: EngineClient | null = null;
  let abort: AbortController | null = null;
  const onEvent = (ev: ClientEvent) => {
    switch (ev.type) {
      case 'progress': {
        progress.hidden = false;
        if (ev.total > 0) progress.value = ev.loaded / ev.total;
        else progress.removeAttribute('value');
        setLoad(ev.status === 'error' ? 'error' : 'loading', `${ev.cached ? 'from cache' : ev.status}: ${ev.file} ${(ev.loaded / 1e6).toFixed(1)}${ev.total ? ` / ${(ev.total / 1e6).toFixed(1)}` : ''} MB`);
        break;
      }
      case 'stage':
        setLoad('loading', ev.message);
        break;
      case 'text':
        hook.text = ev.transcript;
        hook.textPackets++;
        transcript.textContent = ev.transcript;
        transcript.scrollTop = transcript.scrollHeight;
        break;
      case 'peer':
        if (ev.state === 'silent') {
          banner(ev.side === 'engine' ? 'Engine not responding.' : 'Page not responding.', ` No heartbeat for ${(ev.silentForMs / 1000).toFixed(0)} s on the packet channel${ev.side === 'engine' ? ': the engine Worker may be stuck on a long GPU step' : ''}.`, true);
        } else {
          runStatus.textContent = `the ${ev.side} is responding again`;
        }
        break;
      case 'device-lost':
        banner('GPU device lost.', ` ${ev.message} Reload the page to start again.`);
        micBtn.disabled = true;
        fileBtn.disabled = true;
        fail('gpu', new Error(ev.message));
        break;
      case 'error':
        runStatus.textContent = ev.message;
        banner('Engine error.', ` ${ev.message}`);
        fail('engine', new Error(ev.message));
        break;
      case 'warning':
        // The engine keeps running (bad samples zeroed, a bad frame silenced); the metrics count the rest.
        banner('Engine warning.', ` ${ev.message}`, true);
        break;
    }
  };

  const ensureClient = async () => {
    client ??= await EngineClient.create(onEvent, { micProcessing: q.get('rawMic') !== '1', forcePackets: q.get('transport') === 'packets' });
    hook.adapter = client.adapter;
    return client;
  };

  const spec = (): ModelSpec => {
    const src = el<HTMLInputElement>(root, 'input[name="src"]:checked').value;
    const condition = input('condition').value.trim() || null;
    if (src === 'hub') return { kind: 'hub', baseUrl: input('hubBase').value.trim(), repo: input('hubRepo').value.trim(), condition };
    if (src === 'files') {
      const files = [...(input('folder').files ?? []), ...(input('files').files ?? [])];
      return { kind: 'files', files, condition };
    }
    const opt = (k: string) => input(k).value.trim() || null;
    return { kind: 'urls', mimiConfig: opt('mimiConfig'), mimiWeights: input('mimiWeights').value.trim(), lmConfig: opt('lmConfig'), lmWeights: input('lmWeights').value.trim(), tokenizer: opt('tokenizer'), condition };
  };

  const load = async () => {
    loadBtn.disabled = true;
    micBtn.disabled = true;
    cancelBtn.hidden = false;
    progress.hidden = false;
    progress.value = 0;
    hook.state = 'loading';
    hook.error = null;
    abort = new AbortController();
    setLoad('loading', 'starting…');
    try {
      const c = await ensureClient();
      const info = await c.load(spec(), sampling, abort.signal);
      progress.value = 1;
      setLoad('ready', `Ready: ${info.summary}`);
      hook.state = 'ready';
      micBtn.disabled = false;
      fileBtn.disabled = false;
    } catch (e) {
      const msg = fail('load', e);
      setLoad('error', msg);
      progress.hidden = true;
      const name = e instanceof Error ? e.name : '';
      if (name === 'WebGPUUnavailableError') banner('No WebGPU.', ` ${msg}`);
      else if (name === 'GpuDeviceLostError') banner('GPU device lost.', ` ${msg} Reload the page to start again.`);
      else if (/Weight|Safetensors|Config|Tokenizer|Source|Mismatch/i.test(name)) banner('Weights missing or invalid.', ` ${msg}`);
    } finally {
      loadBtn.disabled = false;
      cancelBtn.hidden = true;
      abort = null;
    }
  };
  loadBtn.onclick = load;
  cancelBtn.onclick = () => abort?.abort();

  let running = false;
  /** File-input mode: the picked WAV (any rate, PCM16 or float) resampled to 24 kHz, sent as AUDIO_CHUNK packets in real time. */
  const playFile = async () => {
    if (!client) return;
    const f = input('talkFile').files?.[0];
    if (!f) {
      runStatus.textContent = 'choose a WAV file first';
      return;
    }
    fileBtn.disabled = micBtn.disabled = true;
    try {
      if (running) await client.stop();
      const wav = decodeWav(new Uint8Array(await f.arrayBuffer()), f.name, { downmix: true });
      const pcm = wav.sampleRate === 24000 ? wav.samples : resample(wav.samples, wav.sampleRate, 24000);
      await client.start({ kind: 'file', pcm });
      running = true;
      hook.runStartedAt = performance.now();
      hook.transport = client.transport;
      hook.state = 'running';
      micBtn.textContent = 'Stop';
      runStatus.textContent = `playing ${f.name} (${(pcm.length / 24000).toFixed(1)} s) to Moshi (AUDIO_CHUNK messages)`;
    } catch (e) {
      const msg = fail('file', e);
      runStatus.textContent = msg;
      banner('Could not play the file.', ` ${msg}`);
    } finally {
      fileBtn.disabled = micBtn.disabled = false;
    }
  };
  fileBtn.onclick = playFile;
  const toggleMic = async () => {
    if (!client) return;
    micBtn.disabled = true;
    try {
      if (!running) {
        runStatus.textContent = 'starting microphone…';
        await client.start();
        running = true;
        hook.runStartedAt = performance.now();
        hook.transport = client.transport;
        hook.state = 'running';
        micBtn.textContent = 'Stop microphone';
        runStatus.textContent = client.transport === 'shared' ? 'live (shared-memory rings)' : 'live (AUDIO_CHUNK messages)';
      } else {
        await client.stop();
        running = false;
        hook.state = 'ready';
        micBtn.textContent = 'Start microphone';
        runStatus.textContent = 'stopped';
      }
    } catch (e) {
      const msg = fail('microphone', e);
      runStatus.textContent = msg;
      const name = e instanceof Error ? e.name : '';
      if (name === 'NotAllowedError' || name === 'SecurityError') banner('Microphone denied.', ' Allow microphone access for this page (the camera/microphone icon in the address bar) and try again.');
      else if (name === 'NotFoundError') banner('No microphone.', ' No audio input device was found.');
      else banner('Could not start audio.', ` ${msg}`);
    } finally {
      micBtn.disabled = false;
    }
  };
  micBtn.onclick = toggleMic;

  el<HTMLButtonElement>(root, 'button.apply').onclick = () => {
    for (const k of ['temp', 'tempText', 'topK', 'topKText', 'seed'] as const) {
      const v = Number(input(k).value);
      if (Number.isFinite(v)) sampling[k] = v;
    }
    void client?.setSampling(sampling);
  };

  // Meters and metrics refresh.
  const inFill = el(root, '.fill.in');
  const outFill = el(root, '.fill.out');
  const inDb = el(root, '.in-db');
  const outDb = el(root, '.out-db');
  const meter = (fill: HTMLElement, label: HTMLElement, rms: number) => {
    const db = rms > 0 ? 20 * Math.log10(rms) : -Infinity;
    fill.style.width = `${Math.max(0, Math.min(100, ((db + 60) / 60) * 100))}%`;
    label.textContent = Number.isFinite(db) ? `${db.toFixed(0)} dB` : '–∞ dB';
  };
  const tbody = el(root, 'table.metrics tbody');
  const counters = el(root, 'dl.counters');
  const budgetBar = el(root, '.budget');
  const budgetText = el(root, '.budget-text');
  const render = (m: MetricsSnapshot) => {
    const rows: [string, keyof StepTimings, MetricsSnapshot['encodeMs']][] = [
      ['encode', 'encodeMs', m.encodeMs], ['LM', 'lmMs', m.lmMs], ['decode', 'decodeMs', m.decodeMs], ['step', 'totalMs', m.stepMs],
    ];
    tbody.innerHTML = rows.map(([n, k, p]) => `<tr><td>${n}</td><td>${m.last ? fmt(m.last[k]) : '–'}</td><td>${fmt(p.p50)}</td><td>${fmt(p.p95)}</td><td>${fmt(p.max)}</td></tr>`).join('');
    if (m.last) {
      // Scale: the budget, or the step when it ran over; the marker sits at 80 ms.
      const scale = Math.max(m.budgetMs, m.last.totalMs);
      const pct = (v: number) => (Math.max(0, v) / scale) * 100;
      const [e, l, d] = [pct(m.last.encodeMs), pct(m.last.lmMs), pct(m.last.decodeMs)];
      const spans = budgetBar.querySelectorAll('span');
      spans[0].style.cssText = `left:0;width:${e}%`;
      spans[1].style.cssText = `left:${e}%;width:${l}%`;
      spans[2].style.cssText = `left:${e + l}%;width:${d}%`;
      spans[3].style.cssText = `left:${pct(m.budgetMs)}%`;
      budgetBar.dataset.over = m.last.totalMs > m.budgetMs ? '1' : '0';
      budgetText.textContent = `last step ${fmt(m.last.totalMs)} ms of ${m.budgetMs} ms`;
    }
    const dropped = Object.entries(m.droppedPackets).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ') || '0';
    const items: [string, string][] = [
      ['steps', String(m.steps)], ['over 80 ms', String(m.overBudget)], ['input queue', `${(m.inputQueueSamples / 24).toFixed(0)} ms`],
      ['output queue', `${(m.outputQueueSamples / 24).toFixed(0)} ms`], ['underruns', String(m.underruns)], ['overruns', String(m.overruns)],
      ['skipped decodes', String(m.skippedDecodes)], ['dropped packets', dropped], ['protocol errors', String(m.protocolErrors)], ['text tokens', String(m.textTokens)],
      ['non-finite', nonFiniteText(m.nonFinite)],
    ];
    counters.innerHTML = items.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('');
  };
  render({
    steps: 0, tokenSteps: 0, overBudget: 0, skippedDecodes: 0, budgetMs: 80, last: null, textTokens: 0,
    encodeMs: { p50: 0, p95: 0, max: 0, mean: 0 }, lmMs: { p50: 0, p95: 0, max: 0, mean: 0 }, decodeMs: { p50: 0, p95: 0, max: 0, mean: 0 }, stepMs: { p50: 0, p95: 0, max: 0, mean: 0 },
    inputQueueSamples: 0, outputQueueSamples: 0, underruns: 0, overruns: 0, droppedPackets: {}, protocolErrors: 0,
    nonFinite: { inputFrames: 0, inputSamples: 0, textLogitSteps: 0, audioLogitSteps: 0, outputFrames: 0, outputSamples: 0 },
  });
  const tick = async () => {
    if (client) {
      const levels = client.levels();
      meter(inFill, inDb, levels.input);
      meter(outFill, outDb, levels.output);
      try {
        const m = await client.stats();
        hook.metrics = m;
        hook.played = client.played();
        hook.captured = client.captured();
        hook.protocolErrors = m.protocolErrors;
        render(m);
      } catch {
        // the worker is busy loading or gone; the next tick retries
      }
    }
    setTimeout(tick, 250);
  };
  void tick();

  registerPwa();
  if (q.get('autoload') === '1') {
    void load().then(() => {
      if (q.get('autostart') === '1' && hook.state === 'ready') void toggleMic();
    });
  }
}

/** The metrics panel's line for the engine's finiteness checks: '0', or what was found (input samples zeroed, steps with NaN logits, output frames silenced). */
function nonFiniteText(n: MetricsSnapshot['nonFinite'] | undefined): string {
  if (!n) return '0';
  const parts = [
    n.inputSamples ? `${n.inputSamples} input samples zeroed` : '',
    n.textLogitSteps ? `${n.textLogitSteps} steps text logits` : '',
    n.audioLogitSteps ? `${n.audioLogitSteps} steps audio logits` : '',
    n.outputFrames ? `${n.outputFrames} output frames silenced` : '',
  ].filter(Boolean);
  return parts.join(', ') || '0';
}
