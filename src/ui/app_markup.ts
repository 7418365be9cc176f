/**
 * The voice-assistant page's markup and HTML templates (src/ui/app.ts wires them): the page
 * skeleton, the metrics table rows and the counters list. Values are numbers and fixed labels
 * (no user text goes through these templates).
 */
import type { MetricsSnapshot, StepTimings } from '../engine/metrics.ts';
import { STT_BESIDE_MARKUP } from './stt_beside.ts';

/** A duration in ms with 3 significant-ish digits: 123, 12.3, 1.23. */
export const fmt = (v: number): string => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

/** The page skeleton mounted by mountApp; app.ts looks its elements up by these class names. */
export const APP_MARKUP = `
<section class="no-webgpu" role="alert" hidden>
  <h2>This browser cannot run SolaceLive: it has no WebGPU</h2>
  <p>SolaceLive runs the Moshi speech model on your graphics card, through WebGPU. This browser does not offer WebGPU, or has turned it off for this graphics card.</p>
  <ul>
    <li><b>Chrome or Edge 113 or newer</b> on Windows, macOS or ChromeOS, <b>Chrome 121 or newer</b> on Android: WebGPU is on by default. Update the browser if it is older.</li>
    <li><b>Chrome or Edge on Linux</b>: open <code>chrome://flags/#enable-unsafe-webgpu</code>, set it to <i>Enabled</i> (and <code>chrome://flags/#enable-vulkan</code> too), then relaunch the browser.</li>
    <li><b>Safari 26 or newer</b> (macOS, iOS and iPadOS 26): on by default. On older Safari: Settings → Advanced → Feature Flags → WebGPU.</li>
    <li><b>Firefox 141 or newer</b> on Windows: on by default. Elsewhere, Firefox Nightly with <code>dom.webgpu.enabled</code> set to true in <code>about:config</code>.</li>
  </ul>
  <p>Already using one of these? The graphics card may be blocked: turn on hardware acceleration in the browser's settings, update the graphics driver, and look at <code>chrome://gpu</code> (Chrome, Edge) for what is disabled. Then reload this page.</p>
  <p class="hint no-webgpu-detail"></p>
</section>
<button class="install" hidden title="Install SolaceLive as an app (it then opens in its own window and starts offline)">Install app</button>
<p class="offline-note" role="status" hidden><b>Offline.</b> The app runs from this browser's copy: models already cached and local files load; the hub and URL downloads wait for a connection.</p>
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
      <label>Model <select name="hubModel"></select></label>
      <label class="hub-repo" hidden>Repository <input type="text" name="hubRepo"></label>
      <p class="hint model-fit"></p>
      <p class="hint">Downloads the released Mimi codec, the Moshi LM and the text tokenizer of that repository and caches them in this browser. GPU memory = weights as stored + an f16 KV cache over 3000 steps (4 min).</p>
    </div>
    <div class="source" data-src="files" hidden>
      <label>Folder <input type="file" name="folder" webkitdirectory multiple></label>
      <label>…or files <input type="file" name="files" multiple accept=".json,.safetensors,.model"></label>
      <div class="file-choosers" hidden></div>
      <p class="hint">Needs a Mimi and a Moshi <code>.safetensors</code>, optionally their config <code>.json</code> files and the SentencePiece <code>.model</code>. Files are matched by name (mimi/tokenizer-… = Mimi, model/moshi = LM).</p>
    </div>
    <div class="source" data-src="urls" hidden>
      <label>Mimi config URL <input type="url" name="mimiConfig" placeholder="(optional: released Mimi)"></label>
      <label>Mimi weights URL <input type="url" name="mimiWeights"></label>
      <label>LM config URL <input type="url" name="lmConfig" placeholder="(optional: Moshi 7B)"></label>
      <label>LM weights URL <input type="url" name="lmWeights"></label>
      <label>Tokenizer URL <input type="url" name="tokenizer" placeholder="(optional: text shows token ids)"></label>
    </div>
    ${STT_BESIDE_MARKUP}
    <div class="row"><button class="primary load">Load model</button><button class="cancel" hidden>Cancel</button></div>
    <progress class="progress" max="1" value="0" hidden></progress>
    <div class="status load-status" data-state="idle">No model loaded.</div>
    <p class="hint storage"></p>
    <div class="cache-manager"></div>
  </section>
  <section class="card talk">
    <h2>2 · Talk</h2>
    <div class="row"><button class="primary mic" disabled>Start microphone</button><span class="status run-status"></span></div>
    <div class="row"><label>…or play a recording to Moshi <input type="file" name="talkFile" accept=".wav,audio/wav"></label><button class="file" disabled>Play file</button></div>
    <div class="row record-row"><label title="Keeps both voices (you left, Moshi right, 24 kHz) and both transcripts of the next conversation, at most 10 minutes, in this tab only"><input type="checkbox" name="record"> Record the conversation</label>
      <button class="save-wav" hidden>Download recording (.wav)</button><button class="save-transcript" hidden>Download transcript (.txt)</button><span class="hint record-status"></span></div>
    <div class="meter"><span>input</span><div class="bar"><div class="fill in"></div></div><span class="in-db">–∞ dB</span></div>
    <div class="meter"><span>output</span><div class="bar"><div class="fill out"></div></div><span class="out-db">–∞ dB</span></div>
    <canvas class="waveform" width="600" height="96" aria-label="waveforms: your voice (top), Moshi's voice (bottom)" title="your voice (top, teal), Moshi's voice (bottom, grey)"></canvas>
    <section class="you-said" hidden>
      <h2>Conversation</h2>
      <div class="conversation" aria-live="polite"></div>
      <h2>You said</h2>
      <div class="user-transcript"></div>
    </section>
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

/** The metrics before the first step (every figure 0, no last step). */
export const EMPTY_METRICS: MetricsSnapshot = {
  steps: 0, tokenSteps: 0, overBudget: 0, skippedDecodes: 0, budgetMs: 80, last: null, textTokens: 0,
  encodeMs: { p50: 0, p95: 0, max: 0, mean: 0 }, lmMs: { p50: 0, p95: 0, max: 0, mean: 0 }, decodeMs: { p50: 0, p95: 0, max: 0, mean: 0 }, stepMs: { p50: 0, p95: 0, max: 0, mean: 0 },
  inputQueueSamples: 0, outputQueueSamples: 0, underruns: 0, overruns: 0, droppedPackets: {}, protocolErrors: 0,
  nonFinite: { inputFrames: 0, inputSamples: 0, textLogitSteps: 0, audioLogitSteps: 0, outputFrames: 0, outputSamples: 0 },
};

/** `<tr>` rows of the metrics table: encode, LM, decode and step ms (last, p50, p95, max). */
export function metricsRowsHtml(m: MetricsSnapshot): string {
  const rows: [string, keyof StepTimings, MetricsSnapshot['encodeMs']][] = [
    ['encode', 'encodeMs', m.encodeMs], ['LM', 'lmMs', m.lmMs], ['decode', 'decodeMs', m.decodeMs], ['step', 'totalMs', m.stepMs],
  ];
  return rows.map(([n, k, p]) => `<tr><td>${n}</td><td>${m.last ? fmt(m.last[k]) : '–'}</td><td>${fmt(p.p50)}</td><td>${fmt(p.p95)}</td><td>${fmt(p.max)}</td></tr>`).join('');
}

/** `<dt>/<dd>` pairs of the loop counters: steps, budget overruns, queue depths (ms), underruns, drops… */
export function countersHtml(m: MetricsSnapshot): string {
  const dropped = Object.entries(m.droppedPackets).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ') || '0';
  const items: [string, string][] = [
    ['steps', String(m.steps)], ['over 80 ms', String(m.overBudget)], ['input queue', `${(m.inputQueueSamples / 24).toFixed(0)} ms`],
    ['output queue', `${(m.outputQueueSamples / 24).toFixed(0)} ms`], ['underruns', String(m.underruns)], ['overruns', String(m.overruns)],
    ['skipped decodes', String(m.skippedDecodes)], ['dropped packets', dropped], ['protocol errors', String(m.protocolErrors)], ['text tokens', String(m.textTokens)],
    ['non-finite', nonFiniteText(m.nonFinite)],
    // Mic → speaker (the playback worklet's reports) and, beside it, the model's own delay.
    ['mic → speaker', m.latencyMs && m.latencyMs.count > 0 ? `p50 ${fmt(m.latencyMs.p50)} / p95 ${fmt(m.latencyMs.p95)} ms` : '–'],
    ['model delay', m.modelDelayMs !== undefined ? `${fmt(m.modelDelayMs)} ms` : '–'],
    ['underrun time', m.underrunPercent !== undefined ? `${m.underrunPercent.toFixed(2)} %` : '–'],
  ];
  return items.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('');
}

/** The non-finite counters as one short text ('0', or e.g. 'input 2 frames, text logits 1 step'). */
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
