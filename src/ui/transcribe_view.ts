/**
 * The page's Transcribe mode: a mode switch (Talk with Moshi / Transcribe with a Kyutai
 * speech-to-text model) and the Transcribe card. With an STT model loaded (the model picker lists
 * kyutai/stt-1b-en_fr and kyutai/stt-2.6b-en in this mode; local files and URLs work too), the
 * microphone or a WAV file goes to the engine Worker, whose live transcriber
 * (src/engine/stt_loop.ts) sends one 'caption' METADATA packet per 80 ms step; the captions
 * appear word by word. An extra head's probability (output 0 of the chosen head: the pause /
 * end-of-turn probability of stt-1b-en_fr's voice-activity heads) is shown for every head, and a
 * pause marker appears where the chosen one rises above the threshold (both chosen by the user).
 * Stop feeds the model's right padding (the last words arrive, the text lags by
 * audio_delay_seconds); a played file ends by itself. The transcript can be copied and downloaded
 * as .txt, .srt and .vtt (src/ui/captions.ts, src/text/subtitles.ts).
 *
 * Automation: `?mode=transcribe` opens the page in this mode; the state is on
 * `window.__solacelive.transcribe` (TranscribeHook).
 */
import { resample } from '../audio/resample.ts';
import { decodeWav } from '../audio/wav.ts';
import type { CaptionMeta, ModelInfo, SttModelInfo } from '../engine/worker_api.ts';
import type { TimedWord } from '../models/stt.ts';
import { CaptionTrack } from './captions.ts';
import { saveFile } from './save_file.ts';
import type { ClientEvent, EngineClient } from './engine_client.ts';
import type { ModelPickerState, PickerMode } from './model_picker.ts';

/** What the Transcribe mode exposes for automation (on `window.__solacelive.transcribe`). */
export interface TranscribeHook {
  mode: PickerMode;
  /** 'idle' (no run yet), 'running', 'finishing' (Stop pressed: the padding is being fed), 'ended'. */
  state: 'idle' | 'running' | 'finishing' | 'ended';
  /** Why the last run ended, once it has. */
  endReason: 'stopped' | 'file-ended' | null;
  /** Steps the engine said it sent (from 'caption-end'), null while running. */
  sentSteps: number | null;
  /** Text tokens of the steps received in order. */
  tokens: number[];
  /** The transcript text and words shown. */
  text: string;
  words: TimedWord[];
  /** The chosen pause head and threshold, and the steps where a pause marker stands. */
  head: number;
  threshold: number;
  pauses: number[];
  /** The loaded model's STT info, null when the loaded model is not a speech-to-text one. */
  model: SttModelInfo | null;
}

export interface TranscribeView {
  readonly mode: PickerMode;
  /** Captions, run ends and engine errors from the engine client. */
  onEvent(ev: ClientEvent): void;
  /** A model was loaded: STT models switch the page to this mode and enable it. */
  onLoaded(info: ModelInfo): void;
}

export interface TranscribeDeps {
  picker: ModelPickerState;
  /** The page's test hook: `transcribe` is set on it; its `state` says whether Talk is running. */
  hook: { state: string; transcribe?: TranscribeHook };
  client: () => Promise<EngineClient>;
  banner: (title: string, msg: string, opts?: { warn?: boolean; group?: 'load' | 'run' }) => void;
}

const MODES_MARKUP = `
  <label><input type="radio" name="mode" value="talk" checked> Talk with Moshi</label>
  <label><input type="radio" name="mode" value="transcribe"> Transcribe (speech-to-text)</label>`;

const CARD_MARKUP = `
  <h2>2 · Transcribe</h2>
  <p class="hint stt-model-hint">Load a speech-to-text model in the Model card (the hub list shows Kyutai's STT models in this mode).</p>
  <div class="row"><button class="primary stt-mic" disabled>Start microphone</button><span class="status stt-status" role="status"></span></div>
  <div class="row"><label>…or transcribe a recording <input type="file" name="sttFile" accept=".wav,audio/wav"></label><button class="stt-file" disabled>Transcribe file</button></div>
  <div class="row stt-vad">
    <label>Pause head <select name="sttHead"></select></label>
    <label>threshold <input type="number" name="sttThreshold" min="0" max="1" step="0.05" value="0.5"></label>
    <span class="hint stt-vad-hint"></span>
  </div>
  <div class="stt-probs" aria-label="extra-head probabilities"></div>
  <div class="captions" aria-live="polite"></div>
  <div class="row stt-exports">
    <button class="stt-copy" disabled>Copy</button>
    <button class="stt-txt" disabled>Download .txt</button>
    <button class="stt-srt" disabled>Download .srt</button>
    <button class="stt-vtt" disabled>Download .vtt</button>
    <span class="hint stt-export-status"></span>
  </div>`;

const q = <T extends HTMLElement>(root: ParentNode, sel: string): T => {
  const e = root.querySelector(sel);
  if (!e) throw new Error(`page markup is missing ${sel}`);
  return e as T;
};

/** Mounts the mode switch (before `.grid`) and the Transcribe card (after `.card.talk`) into the page. */
export function mountTranscribeView(root: HTMLElement, deps: TranscribeDeps): TranscribeView {
  const grid = q(root, '.grid');
  const talkCard = q(root, '.card.talk');
  const samplingCard = root.querySelector<HTMLElement>('.card.sampling');
  const modes = document.createElement('div');
  modes.className = 'tabs modes';
  modes.setAttribute('role', 'radiogroup');
  modes.setAttribute('aria-label', 'Mode');
  modes.innerHTML = MODES_MARKUP;
  grid.before(modes);
  const card = document.createElement('section');
  card.className = 'card transcribe';
  card.hidden = true;
  card.innerHTML = CARD_MARKUP;
  talkCard.after(card);

  const micBtn = q<HTMLButtonElement>(card, 'button.stt-mic');
  const fileBtn = q<HTMLButtonElement>(card, 'button.stt-file');
  const fileInput = q<HTMLInputElement>(card, 'input[name="sttFile"]');
  const status = q(card, '.stt-status');
  const modelHint = q(card, '.stt-model-hint');
  const headSel = q<HTMLSelectElement>(card, 'select[name="sttHead"]');
  const thrInput = q<HTMLInputElement>(card, 'input[name="sttThreshold"]');
  const vadHint = q(card, '.stt-vad-hint');
  const probs = q(card, '.stt-probs');
  const captions = q(card, '.captions');
  const exportBtns = (['copy', 'txt', 'srt', 'vtt'] as const).map((k) => q<HTMLButtonElement>(card, `button.stt-${k}`));
  const exportStatus = q(card, '.stt-export-status');

  const hook: TranscribeHook = { mode: 'talk', state: 'idle', endReason: null, sentSteps: null, tokens: [], text: '', words: [], head: 0, threshold: 0.5, pauses: [], model: null };
  deps.hook.transcribe = hook;
  let model: SttModelInfo | null = null;
  let track: CaptionTrack | null = null;
  let mode: PickerMode = 'talk';

  const setMode = (m: PickerMode) => {
    mode = m;
    hook.mode = m;
    q<HTMLInputElement>(modes, `input[value="${m}"]`).checked = true;
    card.hidden = m !== 'transcribe';
    talkCard.hidden = m === 'transcribe';
    if (samplingCard) samplingCard.hidden = m === 'transcribe'; // STT samples as its config says (greedy)
    deps.picker.setMode(m);
  };
  modes.querySelectorAll<HTMLInputElement>('input[name="mode"]').forEach((r) => {
    r.onchange = () => {
      const want = r.value as PickerMode;
      if (deps.hook.state === 'running' || hook.state === 'running' || hook.state === 'finishing') {
        // One run at a time: switching would leave it running unseen.
        q<HTMLInputElement>(modes, `input[value="${mode}"]`).checked = true;
        deps.banner('Stop first.', ' A run is going on; stop it before switching modes.', { warn: true, group: 'run' });
        return;
      }
      setMode(want);
    };
  });

  const headChoice = () => Number(headSel.value);
  const threshold = () => {
    const v = Number(thrInput.value);
    return Number.isFinite(v) ? Math.min(1, Math.max(0, v)) : 0.5;
  };

  let renderQueued = false;
  const scheduleRender = () => {
    if (renderQueued) return;
    renderQueued = true;
    setTimeout(() => {
      renderQueued = false;
      render();
    }, 0);
  };
  /** Captions (word by word, pause markers), probabilities and the hook, from the track. */
  const render = () => {
    const steps = track?.complete ?? [];
    const H = model?.numHeads ?? 0;
    const Dh = model?.headDim ?? 0;
    const head = H ? headChoice() : 0;
    const thr = threshold();
    const pauses = track && H ? track.pauses(head, thr) : [];
    const pauseAt = new Set(pauses);
    const frag = document.createDocumentFragment();
    // Words as timedWords groups them (a piece with U+2581 starts one; a word of spaces only is not
    // shown); a pause marker goes before the first word that starts after its step.
    let cur: HTMLSpanElement | null = null;
    let shown = false;
    const markers: HTMLSpanElement[] = [];
    const show = () => {
      if (shown || !cur || !cur.textContent) return;
      for (const m of markers.splice(0)) frag.append(m, ' ');
      frag.append(cur, ' ');
      shown = true;
    };
    for (const c of steps) {
      if (pauseAt.has(c.step)) {
        const marker = document.createElement('span');
        markers.push(marker);
        marker.className = 'pause';
        marker.textContent = '‖ pause';
        marker.title = `head ${head}: p = ${c.heads[head * Dh].toFixed(3)} > ${thr} at ${c.time.toFixed(2)} s`;
      }
      const t = c.text ?? (c.piece === null ? `[${c.token}]` : null);
      if (t === null) continue;
      if (!cur || (c.piece ?? '\u2581').startsWith('\u2581')) {
        cur = document.createElement('span');
        cur.className = 'word';
        cur.dataset.start = c.time.toFixed(2);
        cur.title = `${c.time.toFixed(2)} s`;
        cur.textContent = t.trimStart();
        shown = false;
      } else cur.textContent += t;
      show();
    }
    for (const m of markers) frag.append(m, ' ');
    captions.replaceChildren(frag);
    captions.scrollTop = captions.scrollHeight;
    // Probabilities of the last step: output 0 of every head, the chosen one marked.
    const last = steps[steps.length - 1];
    probs.replaceChildren(...Array.from({ length: H }, (_, h) => {
      const p = last ? last.heads[h * Dh] : 0;
      const d = document.createElement('span');
      d.className = `prob${h === head ? ' chosen' : ''}${p > thr ? ' over' : ''}`;
      d.dataset.head = String(h);
      const bar = document.createElement('i');
      bar.style.width = `${(p * 100).toFixed(1)}%`;
      const bg = document.createElement('b');
      bg.append(bar);
      d.append(`head ${h}`, bg, p.toFixed(2));
      return d;
    }));
    hook.tokens = steps.map((c) => c.token);
    hook.text = track?.text() ?? '';
    hook.words = track?.words() ?? [];
    hook.head = head;
    hook.threshold = thr;
    hook.pauses = pauses;
    const any = steps.length > 0;
    exportBtns.forEach((b) => (b.disabled = !any));
  };
  headSel.onchange = scheduleRender;
  thrInput.oninput = scheduleRender;

  const setRunning = (on: boolean) => {
    micBtn.textContent = on ? 'Stop' : 'Start microphone';
    fileBtn.disabled = on || !model;
    micBtn.disabled = !model;
  };
  const newTrack = () => {
    track = new CaptionTrack(model!);
    hook.endReason = null;
    hook.sentSteps = null;
    render();
  };
  const fail = (title: string, e: unknown) => {
    const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    deps.banner(title, ` ${msg}`, { group: 'run' });
    status.textContent = 'not started (see the message above)';
    hook.state = track ? 'ended' : 'idle';
    setRunning(false);
  };

  micBtn.onclick = async () => {
    if (!model) return;
    const c = await deps.client();
    micBtn.disabled = true;
    if (hook.state === 'running') {
      hook.state = 'finishing';
      status.textContent = `finishing: the last ${model.audioDelaySeconds + 1} s of padding bring out the last words…`;
      try {
        await c.stop();
      } catch (e) {
        fail('Could not stop.', e);
      }
      micBtn.disabled = false;
      return;
    }
    try {
      newTrack();
      status.textContent = 'starting microphone…';
      await c.start();
      hook.state = 'running';
      setRunning(true);
      status.textContent = `live: the text follows the speech by ${model.audioDelaySeconds} s`;
    } catch (e) {
      const name = e instanceof Error ? e.name : '';
      if (name === 'NotAllowedError' || name === 'SecurityError') deps.banner('Microphone denied.', ' Allow microphone access for this page and try again.', { group: 'run' });
      else fail('Could not start audio.', e);
      hook.state = 'idle';
      setRunning(false);
    }
  };

  fileBtn.onclick = async () => {
    if (!model) return;
    const f = fileInput.files?.[0];
    if (!f) {
      status.textContent = 'choose a WAV file first';
      return;
    }
    fileBtn.disabled = true;
    try {
      const c = await deps.client();
      const wav = decodeWav(new Uint8Array(await f.arrayBuffer()), f.name, { downmix: true });
      if (wav.samples.length === 0) throw new Error(`${f.name} holds no samples: nothing to transcribe`);
      const pcm = wav.sampleRate === 24000 ? wav.samples : resample(wav.samples, wav.sampleRate, 24000);
      newTrack();
      await c.start({ kind: 'file', pcm, endAtFileEnd: true });
      hook.state = 'running';
      setRunning(true);
      status.textContent = `transcribing ${f.name} (${(pcm.length / 24000).toFixed(1)} s) in real time`;
    } catch (e) {
      fail('Could not transcribe the file.', e);
    }
  };

  // Copy and downloads (a run's transcript; also while it runs: what has arrived so far).
  const download = (name: string, text: string, type: string) => saveFile(card, name, text, type);
  const [copyBtn, txtBtn, srtBtn, vttBtn] = exportBtns;
  copyBtn.onclick = async () => {
    if (!track) return;
    try {
      await navigator.clipboard.writeText(track.text());
      exportStatus.textContent = 'copied';
    } catch (e) {
      exportStatus.textContent = `could not copy (${(e as Error)?.message ?? e}): select the text and copy it`;
    }
  };
  txtBtn.onclick = () => track && download('transcript.txt', track.files().txt, 'text/plain');
  srtBtn.onclick = () => track && download('transcript.srt', track.files().srt, 'application/x-subrip');
  vttBtn.onclick = () => track && download('transcript.vtt', track.files().vtt, 'text/vtt');

  const onCaption = (c: CaptionMeta) => {
    if (!track) return;
    try {
      track.add(c);
    } catch (e) {
      deps.banner('Bad caption from the engine.', ` ${(e as Error).message}`, { warn: true, group: 'run' });
      return;
    }
    scheduleRender();
  };

  if (new URLSearchParams(location.search).get('mode') === 'transcribe') setMode('transcribe');

  return {
    get mode() {
      return mode;
    },
    onEvent(ev) {
      if (ev.type === 'caption') onCaption(ev.caption);
      else if (ev.type === 'error' && (hook.state === 'running' || hook.state === 'finishing')) {
        // The engine's loop stopped on an error (the page's banner says which): no caption-end will come.
        hook.state = 'ended';
        setRunning(false);
        status.textContent = 'stopped by an engine error (see the message above)';
      }
      else if (ev.type === 'caption-end') {
        hook.state = 'ended';
        hook.endReason = ev.end.reason;
        hook.sentSteps = ev.end.steps;
        if (track) track.ended = true;
        setRunning(false);
        status.textContent = ev.end.reason === 'file-ended' ? `done: the file is transcribed (${ev.end.steps} steps)` : `stopped (${ev.end.steps} steps)`;
        scheduleRender();
      }
    },
    onLoaded(info) {
      model = info.stt ?? null;
      hook.model = model;
      hook.state = 'idle';
      if (!model) {
        modelHint.textContent = 'The loaded model is not a speech-to-text model: load one (Transcribe mode lists Kyutai STT in the hub list) or switch to Talk.';
        micBtn.disabled = fileBtn.disabled = true;
        return;
      }
      modelHint.textContent = `Ready: the text follows the speech by ${model.audioDelaySeconds} s${model.audioSilencePrefixSeconds ? ` (after a ${model.audioSilencePrefixSeconds} s silence prefix)` : ''}.`;
      headSel.replaceChildren(...Array.from({ length: model.numHeads }, (_, h) => new Option(`head ${h}`, String(h))));
      // stt-1b-en_fr's end-of-turn head is extra head 2 (Kyutai's delayed-streams-modeling examples read extra_heads[2][0]).
      if (model.numHeads) headSel.value = String(Math.min(2, model.numHeads - 1));
      headSel.disabled = thrInput.disabled = model.numHeads === 0;
      vadHint.textContent = model.numHeads ? `p = output 0 of the head (${model.numHeads} heads × ${model.headDim})` : 'this model has no extra heads: no pause detection';
      micBtn.disabled = fileBtn.disabled = false;
      setMode('transcribe');
      render();
    },
  };
}
