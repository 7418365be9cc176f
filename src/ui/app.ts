/**
 * The voice-assistant page (index.html): pick a model source, load it with progress, start the
 * microphone, show Moshi's words live, input/output level meters, the loop's metrics against the
 * 80 ms budget, and sampling settings. The engine runs in workers/engine_worker.ts; this page
 * only wires DOM to src/ui/engine_client.ts; its markup and HTML templates are in
 * src/ui/app_markup.ts.
 *
 * Automation (e2e, tests/e2e/run_e2e.ts): query parameters select and start a model
 * (`?mimiConfig=URL&mimiWeights=URL&lmConfig=URL&lmWeights=URL[&tokenizer=URL][&condition=K=V]
 * [&temp=T&tempText=T&topK=N&topKText=N&seed=S]&autoload=1&autostart=1[&rawMic=1][&transport=packets][&catchUp=0]`), and `window.__solacelive`
 * exposes the state, metrics and counters (see `TestHook`). `catchUp=0` (also without autoload):
 * every reply frame is decoded even when the loop is behind real time (StartOptions.catchUp).
 */
import { type ClientEvent, EngineClient, HUB_DEFAULTS } from './engine_client.ts';
import { type ModelPickerState, mountModelPicker } from './model_picker.ts';
import { STT_MODELS, releasedModel, sttModel } from '../models/catalog.ts';
import { type TranscribeHook, mountTranscribeView } from './transcribe_view.ts';
import { DEFAULT_SAMPLING, type ModelInfo, type ModelSpec, type SamplingSettings } from '../engine/worker_api.ts';
import type { MetricsSnapshot } from '../engine/metrics.ts';
import { APP_MARKUP, EMPTY_METRICS, countersHtml, fmt, metricsRowsHtml } from './app_markup.ts';
import { registerPwa } from './pwa.ts';
import { decodeWav } from '../audio/wav.ts';
import { mountCacheManager } from './cache_manager.ts';
import { LoadProgress } from './load_progress.ts';
import { resample } from '../audio/resample.ts';
import { mountSttBeside } from './stt_beside.ts';
import { mountFileChooser } from './file_chooser.ts';
import { saveFile } from './save_file.ts';
import { CaptionTrack } from './captions.ts';
import { type Turn, turnsOf } from '../engine/conversation_record.ts';

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
  /** A screen shown instead of the page: 'no-webgpu' when this browser has no WebGPU adapter. */
  screen: '' | 'no-webgpu';
  /** The hub source's model picker (options, fit on this adapter, selection). */
  modelPicker?: ModelPickerState;
  /** The Transcribe mode (src/ui/transcribe_view.ts). */
  transcribe?: TranscribeHook;
  /**
   * The user's words from a speech-to-text model beside Moshi ("Your words too"): the text and
   * tokens of the conversation's complete captions, and whether its 'caption-end' arrived.
   */
  user: { text: string; tokens: number[]; ended: boolean; hint: string };
  /** The conversation as turns (with a speech-to-text model beside Moshi): the user's words by their caption times, Moshi's by arrival. */
  turns: Turn[];
  /** Waveform frames drawn while running, and the lanes' peak |sample| of the last one (user, Moshi). */
  waveform: { frames: number; peaks: [number, number] };
  /**
   * While running: some reply frame Moshi produced over the last four metrics refreshes (~1 s)
   * was left undecoded (metrics.skippedDecodes: the loop is behind real time, or the channel is
   * over budget); such a frame plays as exact zeros. False when stopped.
   */
  decodesSkipped: boolean;
  /**
   * Why the output meter reads no level, when it is not plain silence: 'buffering' (the playback
   * worklet is filling its jitter buffer, at the start or after an underrun), 'skipped' (exact
   * zeros while `decodesSkipped`); '' otherwise. The meter's label and Moshi's lane say the same.
   */
  outputSilence: '' | 'buffering' | 'skipped';
  /** The last recorded conversation (Record), once fetched after Stop: its seconds and transcript. */
  recording: { seconds: number; transcript: string; droppedFrames: number } | null;
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


/** Mounts the voice-assistant page into `root`. */
export function mountApp(root: HTMLElement): void {
  root.innerHTML = APP_MARKUP;
  const hook: TestHook = {
    state: 'idle', error: null, banners: [], adapter: null, text: '', textPackets: 0, metrics: null,
    played: { samples: 0, rms: 0, underruns: 0 }, captured: { samples: 0, overruns: 0 }, protocolErrors: 0, transport: '', runStartedAt: null, screen: '',
    user: { text: '', tokens: [], ended: false, hint: '' },
    turns: [],
    recording: null,
    waveform: { frames: 0, peaks: [0, 0] },
    decodesSkipped: false,
    outputSilence: '',
  };
  window.__solacelive = hook;
  const bannerList = el(root, '.banners');
  /**
   * One banner per message (the status lines then say only where it happened). `group` names
   * what a later success clears ('load': a successful Load; 'run': a started conversation).
   * Every banner has a close button; `action` adds a button of its own.
   */
  const banner = (title: string, msg: string, opts: { warn?: boolean; group?: 'load' | 'run'; action?: { label: string; run: () => void } } = {}) => {
    const key = `${title}: ${msg}`;
    if (hook.banners.includes(key)) return;
    hook.banners.push(key);
    const d = document.createElement('div');
    d.className = opts.warn ? 'banner warn' : 'banner';
    d.setAttribute('role', opts.warn ? 'status' : 'alert');
    if (opts.group) d.dataset.group = opts.group;
    const b = document.createElement('b');
    b.textContent = title;
    const text = document.createElement('span');
    text.textContent = msg;
    d.append(b, text);
    if (opts.action) {
      const a = document.createElement('button');
      a.className = 'banner-action';
      a.textContent = opts.action.label;
      a.onclick = opts.action.run;
      d.append(a);
    }
    const close = document.createElement('button');
    close.className = 'banner-close';
    close.setAttribute('aria-label', 'Dismiss');
    close.title = 'Dismiss';
    close.textContent = '×';
    const remove = () => {
      d.remove();
      const i = hook.banners.indexOf(key);
      if (i >= 0) hook.banners.splice(i, 1);
    };
    close.onclick = remove;
    d.append(close);
    bannerList.append(d);
    (d as HTMLElement & { dismiss?: () => void }).dismiss = remove;
  };
  /** Removes the banners of `group` (a later success made them stale). */
  const clearBanners = (group: 'load' | 'run') => {
    bannerList.querySelectorAll<HTMLElement & { dismiss?: () => void }>(`.banner[data-group="${group}"]`).forEach((d) => d.dismiss?.());
  };
  const q = new URLSearchParams(location.search);
  const input = (name: string) => el<HTMLInputElement>(root, `[name="${name}"]`);
  input('hubBase').value = q.get('hubBase') ?? HUB_DEFAULTS.baseUrl;
  input('hubRepo').value = q.get('hubRepo') ?? HUB_DEFAULTS.repo;
  const hubModel = el<HTMLSelectElement>(root, 'select[name="hubModel"]');
  const modelPicker = mountModelPicker(root, hubModel, input('hubRepo'), q.get('hubRepo'));
  hook.modelPicker = modelPicker;
  const transcribeView = mountTranscribeView(root, { picker: modelPicker, hook, client: () => ensureClient(), banner });
  const sttBeside = mountSttBeside(root, modelPicker, hubModel);
  const fileChooser = mountFileChooser(el(root, '.file-choosers'), [input('folder'), input('files')]);
  const besideBox = el(root, '.stt-beside');
  /** "Your words too" belongs to Talk (Transcribe runs an STT model alone). */
  const syncBeside = () => {
    besideBox.hidden = transcribeView.mode === 'transcribe';
    hook.user.hint = sttBeside.hint;
  };
  root.addEventListener('change', syncBeside);
  void modelPicker.ready.then(syncBeside);
  syncBeside();
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
  const youSaid = el(root, '.you-said');
  const userTranscript = el(root, '.user-transcript');
  /** The loaded Moshi's STT model beside it (ModelInfo.captions), and this conversation's captions. */
  let userInfo: ModelInfo['captions'] | null = null;
  let userTrack: CaptionTrack | null = null;
  const conversation = el(root, '.conversation');
  /** Moshi's text pieces of this conversation, timed by their arrival (seconds since its start). */
  let moshiPieces: { speaker: 'moshi'; time: number; text: string }[] = [];
  let lastTranscript = '';
  let conversationStart = 0;
  /** The turns of both speakers (turnsOf), as chat bubbles. */
  const showTurns = () => {
    if (!userTrack) return;
    const user = userTrack.complete.map((c) => ({ speaker: 'user' as const, time: c.time, text: c.text ?? (c.piece === null ? `[${c.token}]` : '') }));
    hook.turns = turnsOf([...moshiPieces, ...user]);
    conversation.replaceChildren(...hook.turns.map((t) => {
      const p = document.createElement('p');
      p.className = `turn ${t.speaker}`;
      const who = document.createElement('b');
      who.textContent = `${t.speaker === 'user' ? 'You' : 'Moshi'} · ${t.start.toFixed(1)} s`;
      p.append(who, t.text);
      return p;
    }));
    conversation.scrollTop = conversation.scrollHeight;
  };
  /** A new conversation: a new track for the user's words (the previous one's text is replaced), new turns. */
  const newUserTrack = () => {
    userTrack = userInfo ? new CaptionTrack(userInfo) : null;
    hook.user = { ...hook.user, text: '', tokens: [], ended: false };
    userTranscript.textContent = '';
    moshiPieces = [];
    hook.turns = [];
    conversation.replaceChildren();
    conversationStart = performance.now();
  };
  const showUserWords = () => {
    if (!userTrack) return;
    hook.user = { ...hook.user, text: userTrack.text(), tokens: Array.from(userTrack.tokens), ended: userTrack.ended };
    userTranscript.textContent = hook.user.text;
    userTranscript.scrollTop = userTranscript.scrollHeight;
    showTurns();
  };
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

  /** No WebGPU: a screen for people (which browsers, how to turn it on) instead of the page. */
  const showNoWebGpu = (detail: string) => {
    el(root, '.no-webgpu').hidden = false;
    el(root, '.no-webgpu-detail').textContent = `(${detail})`;
    el(root, '.grid').hidden = true;
    hook.screen = 'no-webgpu';
    hook.state = 'error';
    hook.error = `webgpu: ${detail}`;
  };
  // Environment checks: each missing capability gets its own banner (WebGPU: the screen).
  if (!('gpu' in navigator)) showNoWebGpu('navigator.gpu is missing');
  else {
    void navigator.gpu.requestAdapter().then(
      (a) => { if (!a) showNoWebGpu('no WebGPU adapter'); },
      (e) => showNoWebGpu(`requestAdapter failed: ${(e as Error)?.message ?? e}`),
    );
  }
  if (!crossOriginIsolated) banner('Not cross-origin isolated.', ' SharedArrayBuffer is off, so audio travels as AUDIO_CHUNK messages (more latency). Serve the page with COOP: same-origin and COEP: require-corp (npm start / npm run preview do).', { warn: true });
  if (!window.isSecureContext) banner('Insecure context.', ' The microphone needs https:// or http://localhost.');

  // Install: where the browser offers it (beforeinstallprompt), a button that asks it to.
  const installBtn = el<HTMLButtonElement>(root, 'button.install');
  let installPrompt: (Event & { prompt: () => Promise<unknown> }) | null = null;
  addEventListener('beforeinstallprompt', (e) => {
    e.preventDefault();
    installPrompt = e as Event & { prompt: () => Promise<unknown> };
    installBtn.hidden = false;
  });
  addEventListener('appinstalled', () => {
    installPrompt = null;
    installBtn.hidden = true;
  });
  installBtn.onclick = () => {
    const p = installPrompt;
    installPrompt = null; // a prompt can be shown once
    installBtn.hidden = true;
    void p?.prompt();
  };

  const offlineNote = el(root, '.offline-note');
  const showConnection = () => (offlineNote.hidden = navigator.onLine);
  addEventListener('online', showConnection);
  addEventListener('offline', showConnection);
  showConnection();

  let client: EngineClient | null = null;
  let abort: AbortController | null = null;
  /** The running Load's progress over all its files (speed, time left), in words. */
  let loadProgress = new LoadProgress();
  const onEvent = (ev: ClientEvent) => {
    switch (ev.type) {
      case 'progress': {
        progress.hidden = false;
        loadProgress.update(ev);
        const all = loadProgress.snapshot();
        if (all.total > 0) progress.value = all.loaded / all.total;
        else progress.removeAttribute('value');
        setLoad(ev.status === 'error' ? 'error' : 'loading', loadProgress.words());
        break;
      }
      case 'stage':
        setLoad('loading', ev.message);
        break;
      case 'text':
        // What this event appended is a piece of Moshi's current turn (a TEXT_FINAL that rewrote the text adds nothing).
        if (!ev.newSection && userTrack && ev.transcript.startsWith(lastTranscript) && ev.transcript.length > lastTranscript.length) {
          moshiPieces.push({ speaker: 'moshi', time: (performance.now() - conversationStart) / 1000, text: ev.transcript.slice(lastTranscript.length) });
          showTurns();
        }
        lastTranscript = ev.transcript;
        hook.text = ev.transcript;
        if (!ev.newSection) hook.textPackets++;
        transcript.textContent = ev.transcript;
        transcript.scrollTop = transcript.scrollHeight;
        break;
      case 'peer':
        if (ev.state === 'silent') {
          banner(ev.side === 'engine' ? 'Engine not responding.' : 'Page not responding.', ` No heartbeat for ${(ev.silentForMs / 1000).toFixed(0)} s on the packet channel${ev.side === 'engine' ? ': the engine Worker may be stuck on a long GPU step' : ''}.`, { warn: true, group: 'run' });
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
        runStatus.textContent = 'stopped by an engine error';
        banner('Engine error.', ` ${ev.message}`, { group: 'run' });
        fail('engine', new Error(ev.message));
        transcribeView.onEvent(ev);
        break;
      case 'caption':
      case 'caption-end':
        if (transcribeView.mode === 'transcribe' || !userTrack) {
          transcribeView.onEvent(ev);
          break;
        }
        // The user's words, from the STT model beside Moshi.
        if (ev.type === 'caption') {
          try {
            userTrack.add(ev.caption);
          } catch (e) {
            banner('Bad caption from the engine.', ` ${(e as Error).message}`, { warn: true, group: 'run' });
            break;
          }
        } else userTrack.ended = true;
        showUserWords();
        break;
      case 'warning':
        // The engine keeps running (bad samples zeroed, a bad frame silenced); the metrics count the rest.
        banner('Engine warning.', ` ${ev.message}`, { warn: true, group: 'run' });
        break;
    }
  };

  const ensureClient = async () => {
    client ??= await EngineClient.create(onEvent, { micProcessing: q.get('rawMic') !== '1', forcePackets: q.get('transport') === 'packets', catchUp: q.get('catchUp') !== '0' });
    hook.adapter = client.adapter;
    return client;
  };

  /** The model card's source, with the STT model beside Moshi when one is chosen (Talk mode). */
  const spec = (): ModelSpec => {
    const s = mainSpec();
    const stt = transcribeView.mode === 'talk' ? sttBeside.source(input('hubBase').value.trim()) : null;
    return stt ? { ...s, stt } : s;
  };
  const mainSpec = (): ModelSpec => {
    const src = el<HTMLInputElement>(root, 'input[name="src"]:checked').value;
    const condition = input('condition').value.trim() || null;
    if (src === 'hub') {
      const repo = input('hubRepo').value.trim();
      // Transcribe mode: a Kyutai STT repository (another one is assumed laid out like stt-1b-en_fr).
      const stt = sttModel(repo) ?? (transcribeView.mode === 'transcribe' ? STT_MODELS[0] : null);
      if (stt) return { kind: 'hub', baseUrl: input('hubBase').value.trim(), repo, condition, files: { lmConfig: stt.configFile, lmWeights: stt.lmFile, mimiWeights: stt.mimiFile, tokenizer: stt.tokenizerFile } };
      const released = releasedModel(repo);
      return { kind: 'hub', baseUrl: input('hubBase').value.trim(), repo, condition, ...(released ? { files: { lmWeights: released.lmFile } } : {}) };
    }
    if (src === 'files') {
      return { kind: 'files', files: fileChooser.files(), condition };
    }
    const opt = (k: string) => input(k).value.trim() || null;
    return { kind: 'urls', mimiConfig: opt('mimiConfig'), mimiWeights: input('mimiWeights').value.trim(), lmConfig: opt('lmConfig'), lmWeights: input('lmWeights').value.trim(), tokenizer: opt('tokenizer'), condition };
  };

  /** The stored models (cache and unfinished downloads) and this origin's storage usage of quota, whether the browser may evict it. */
  const cacheManager = mountCacheManager(el(root, '.cache-manager'), { storageLine: el(root, '.storage') });
  const showStorage = () => cacheManager.refresh();

  const load = async () => {
    loadBtn.disabled = true;
    micBtn.disabled = true;
    cancelBtn.hidden = false;
    progress.hidden = false;
    progress.value = 0;
    hook.state = 'loading';
    hook.error = null;
    abort = new AbortController();
    loadProgress = new LoadProgress();
    setLoad('loading', 'starting…');
    try {
      const c = await ensureClient();
      const info = await c.load(spec(), sampling, abort.signal);
      progress.value = 1;
      clearBanners('load');
      setLoad('ready', `Ready: ${info.summary}`);
      transcribeView.onLoaded(info);
      userInfo = info.captions ?? null;
      youSaid.hidden = !userInfo;
      newUserTrack();
      syncBeside();
      // A loaded model is worth keeping: ask the browser not to evict this site's storage (it may say no).
      void (navigator.storage?.persist?.() ?? Promise.resolve(false)).catch(() => false).then(() => showStorage()).catch(() => undefined);
      hook.state = 'ready';
      micBtn.disabled = false;
      fileBtn.disabled = false;
    } catch (e) {
      const msg = fail('load', e);
      progress.hidden = true;
      const titled = loadErrorTitle(e);
      if (e instanceof Error && e.name === 'WebGPUUnavailableError') {
        showNoWebGpu(msg);
        setLoad('error', 'Load failed: no WebGPU.');
      } else if (titled) {
        // The error's own sentence (its class name is the title's job), then what to do.
        const text = e instanceof Error ? e.message : msg;
        banner(titled.title, ` ${text}${/[.!?)]$/.test(text) ? '' : '.'}${titled.advice ? ` ${titled.advice}` : ''}`, { group: 'load' });
        setLoad('error', 'Load failed (see the message above).');
      } else {
        setLoad('error', msg);
      }
    } finally {
      loadBtn.disabled = false;
      cancelBtn.hidden = true;
      abort = null;
      void showStorage().catch(() => undefined); // what this Load cached, or left to resume
    }
  };
  loadBtn.onclick = load;
  cancelBtn.onclick = () => abort?.abort();

  let running = false;
  // Record: the Worker keeps the conversation; after Stop the page fetches it once and offers the files.
  const recordBox = input('record');
  const saveWav = el<HTMLButtonElement>(root, 'button.save-wav');
  const saveTranscript = el<HTMLButtonElement>(root, 'button.save-transcript');
  const recordStatus = el(root, '.record-status');
  let recorded: { wav: Uint8Array; transcript: string } | null = null;
  /** Whether the running conversation was started with Record on (unticking it meanwhile keeps it). */
  let recordingNow = false;
  const clearRecording = () => {
    recorded = null;
    recordingNow = recordBox.checked;
    hook.recording = null;
    saveWav.hidden = saveTranscript.hidden = true;
    recordStatus.textContent = recordBox.checked ? 'recording this conversation' : '';
  };
  const fetchRecording = async () => {
    if (!client || !recordingNow) return;
    const r = await client.recording();
    if (!r) return;
    recorded = { wav: r.wav, transcript: r.transcript };
    hook.recording = { seconds: r.seconds, transcript: r.transcript, droppedFrames: r.droppedFrames };
    saveWav.hidden = saveTranscript.hidden = false;
    recordStatus.textContent = `${r.seconds.toFixed(1)} s recorded${r.droppedFrames ? ' (the first 10 minutes)' : ''}`;
  };
  const stamp = () => new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-');
  saveWav.onclick = () => recorded && saveFile(root, `conversation-${stamp()}.wav`, recorded.wav as Uint8Array<ArrayBuffer>, 'audio/wav');
  saveTranscript.onclick = () => recorded && saveFile(root, `conversation-${stamp()}.txt`, recorded.transcript, 'text/plain');
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
      newUserTrack();
      clearRecording();
      await client.start({ kind: 'file', pcm, record: recordBox.checked });
      running = true;
      hook.runStartedAt = performance.now();
      hook.transport = client.transport;
      hook.state = 'running';
      micBtn.textContent = 'Stop';
      clearBanners('run');
      runStatus.textContent = `playing ${f.name} (${(pcm.length / 24000).toFixed(1)} s) to Moshi (AUDIO_CHUNK messages)`;
    } catch (e) {
      const msg = fail('file', e);
      runStatus.textContent = 'not started (see the message above)';
      banner('Could not play the file.', ` ${msg}`, { group: 'run' });
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
        newUserTrack();
        clearRecording();
        await client.start({ kind: 'mic', record: recordBox.checked });
        running = true;
        hook.runStartedAt = performance.now();
        hook.transport = client.transport;
        hook.state = 'running';
        micBtn.textContent = 'Stop';
        clearBanners('run');
        runStatus.textContent = client.transport === 'shared' ? 'live (shared-memory rings)' : 'live (AUDIO_CHUNK messages)';
      } else {
        await client.stop();
        running = false;
        hook.decodesSkipped = false;
        hook.outputSilence = '';
        await fetchRecording().catch((e: unknown) => banner('Could not keep the recording.', ` ${(e as Error).message}`, { warn: true, group: 'run' }));
        hook.state = 'ready';
        micBtn.textContent = 'Start microphone';
        runStatus.textContent = 'stopped';
        meter(inFill, inDb, 0);
        meter(outFill, outDb, 0);
      }
    } catch (e) {
      const msg = fail('microphone', e);
      runStatus.textContent = 'not started (see the message above)';
      const name = e instanceof Error ? e.name : '';
      if (name === 'NotAllowedError' || name === 'SecurityError') banner('Microphone denied.', ' Allow microphone access for this page (the camera/microphone icon in the address bar) and try again.', { group: 'run' });
      else if (name === 'NotFoundError') banner('No microphone.', ' No audio input device was found.', { group: 'run' });
      else banner('Could not start audio.', ` ${msg}`, { group: 'run' });
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
  /**
   * One meter: `rms` linear (0 dB = full scale; the bar spans −60…0 dB). At rms 0, `silence`
   * (TestHook.outputSilence) names the cause in the label, with a title that explains it.
   */
  const meter = (fill: HTMLElement, label: HTMLElement, rms: number, silence: '' | 'buffering' | 'skipped' = '') => {
    const db = rms > 0 ? 20 * Math.log10(rms) : -Infinity;
    fill.style.width = `${Math.max(0, Math.min(100, ((db + 60) / 60) * 100))}%`;
    label.textContent = Number.isFinite(db) ? `${db.toFixed(0)} dB` : silence || '–∞ dB';
    label.title = Number.isFinite(db) || !silence ? '' : SILENCE_TITLES[silence];
  };
  const SILENCE_TITLES = {
    skipped: "Moshi's voice is not decoded: this device runs the model slower than real time, so the loop skips Mimi's decode to keep up (see 'skipped decodes' in the metrics)",
    buffering: "Playback is buffering: Moshi's reply has not arrived in time (the start, or an underrun: see 'underruns' in the metrics)",
  } as const;
  const LANE_TEXT = { skipped: "Moshi's voice skipped: the model runs slower than real time here", buffering: "Moshi's voice: buffering" } as const;
  /** The metrics counters of the last five refreshes while running (oldest first), for TestHook.decodesSkipped; cleared when stopped or when a new conversation resets them. */
  let decodeSeen: { steps: number; tokenSteps: number; skipped: number }[] = [];
  const updateDecodesSkipped = (m: MetricsSnapshot) => {
    if (!running || (decodeSeen.length > 0 && m.steps < decodeSeen[decodeSeen.length - 1].steps)) decodeSeen = [];
    if (running) decodeSeen.push({ steps: m.steps, tokenSteps: m.tokenSteps, skipped: m.skippedDecodes });
    if (decodeSeen.length > 5) decodeSeen.shift();
    const first = decodeSeen[0];
    const last = decodeSeen[decodeSeen.length - 1];
    hook.decodesSkipped = running && first !== undefined && last.skipped > first.skipped;
  };
  const tbody = el(root, 'table.metrics tbody');
  const counters = el(root, 'dl.counters');
  const budgetBar = el(root, '.budget');
  const budgetText = el(root, '.budget-text');
  const render = (m: MetricsSnapshot) => {
    tbody.innerHTML = metricsRowsHtml(m);
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
    counters.innerHTML = countersHtml(m);
  };
  render(EMPTY_METRICS);

  // The waveform of both voices: the user's (top lane) and Moshi's (bottom lane), every animation frame while running.
  const wave = el<HTMLCanvasElement>(root, 'canvas.waveform');
  const waveCtx = wave.getContext('2d');
  const waveIn = new Float32Array(2048);
  const waveOut = new Float32Array(2048);
  const drawLane = (g: CanvasRenderingContext2D, data: Float32Array, top: number, h: number, color: string): number => {
    const w = wave.width;
    const step = data.length / w;
    let peak = 0;
    g.fillStyle = color;
    for (let x = 0; x < w; x++) {
      let lo = 0;
      let hi = 0;
      for (let i = Math.floor(x * step); i < Math.floor((x + 1) * step); i++) {
        lo = Math.min(lo, data[i]);
        hi = Math.max(hi, data[i]);
      }
      peak = Math.max(peak, -lo, hi);
      const mid = top + h / 2;
      const a = Math.max(-1, lo) * (h / 2);
      const b = Math.min(1, hi) * (h / 2);
      g.fillRect(x, mid - b, 1, Math.max(1, b - a));
    }
    return peak;
  };
  const drawWaves = () => {
    if (running && client && waveCtx && client.waveforms(waveIn, waveOut)) {
      const h = wave.height / 2;
      waveCtx.clearRect(0, 0, wave.width, wave.height);
      const pu = drawLane(waveCtx, waveIn, 0, h, '#2a9d8f');
      const pm = drawLane(waveCtx, waveOut, h, h, '#666');
      if (pm === 0 && hook.outputSilence) {
        // A flat lane that is not Moshi keeping quiet: say why.
        waveCtx.fillStyle = '#666';
        waveCtx.font = '12px sans-serif';
        waveCtx.fillText(LANE_TEXT[hook.outputSilence], 6, h + h / 2 - 4);
      }
      hook.waveform = { frames: hook.waveform.frames + 1, peaks: [pu, pm] };
    }
    requestAnimationFrame(drawWaves);
  };
  requestAnimationFrame(drawWaves);
  const tick = async () => {
    if (client) {
      // Stopped: the meters rest at silence (the analysers would keep their last reading).
      const levels = running ? client.levels() : { input: 0, output: 0 };
      meter(inFill, inDb, levels.input);
      // Decoded audio is never exact zeros: a silent window is the worklet buffering, or skipped frames.
      hook.outputSilence = !running || levels.output > 0 ? '' : client.playbackBuffering() ? 'buffering' : hook.decodesSkipped ? 'skipped' : '';
      meter(outFill, outDb, levels.output, hook.outputSilence);
      try {
        const m = await client.stats();
        hook.metrics = m;
        updateDecodesSkipped(m);
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

  registerPwa({
    onUpdate: (reload) => banner('Update available.', ' A new version of SolaceLive is ready.', { warn: true, action: { label: 'reload', run: reload } }),
  });
  if (q.get('autoload') === '1') {
    void load().then(() => {
      if (q.get('autostart') === '1' && hook.state === 'ready') void toggleMic();
    });
  }
}

/** The metrics panel's line for the engine's finiteness checks: '0', or what was found (input samples zeroed, steps with NaN logits, output frames silenced). */

/**
 * The banner title (and advice) of a failed Load, from the error's name and message (comlink
 * carries both across the Worker boundary), or null for errors the status line shows alone
 * (a cancelled load).
 */
export function loadErrorTitle(e: unknown): { title: string; advice: string } | null {
  const name = e instanceof Error ? e.name : '';
  const message = e instanceof Error ? e.message : String(e);
  if (name === 'AbortError') return null;
  if (name === 'WebGPUUnavailableError') return { title: 'No WebGPU.', advice: '' };
  if (name === 'GpuDeviceLostError') return { title: 'GPU device lost.', advice: 'Reload the page to start again.' };
  if (name === 'GpuLimitError') return { title: 'Model too large for this GPU.', advice: '' };
  if (name === 'GpuOutOfMemoryError') return { title: 'Out of GPU memory.', advice: 'Close other GPU-heavy tabs or apps, or pick a smaller model.' };
  if (name === 'IntegrityError') return { title: 'Download corrupted.', advice: 'Nothing was cached; load again to fetch it anew.' };
  if (name === 'StorageQuotaError') return { title: 'Storage full.', advice: 'What this site stores is listed under “Stored models”.' };
  if (name === 'DownloadStalledError') return { title: 'Download stalled.', advice: 'Check the connection and load again.' };
  if (name === 'ModelSourceError') {
    // The error's code (kept across the Worker boundary by src/engine/worker_errors.ts) says what failed.
    const code = (e as { code?: unknown }).code;
    const status = (e as { status?: unknown }).status;
    // A body that broke off mid-download (code 'truncated', "download interrupted") is the network's doing too.
    if (code === 'network' || /download interrupted/.test(message)) return { title: 'Network error.', advice: 'Check the connection (or the base URL) and load again.' };
    if (code === 'http' && status === 404) return { title: 'Model file not found.', advice: 'Check the URL or the repository.' };
    if (code === 'http' && (status === 401 || status === 403)) return { title: 'Access denied.', advice: 'The server refused the file (a gated repository needs a login).' };
    if (code === 'http') return { title: 'Server error.', advice: 'Load again later.' };
    if (code === 'truncated' || code === 'oversize') return { title: 'Download incomplete.', advice: 'Nothing was cached; load again.' };
    if (code === 'content-type') return /partial response/.test(message) ? { title: 'Wrong answer from the server.', advice: '' } : { title: 'Model file not found.', advice: 'Check the URL.' };
    if (code === 'local') return { title: 'Could not read the file.', advice: '' };
    // Without a code (an error made elsewhere): the message says it.
    if (/could not fetch|download interrupted/.test(message)) return { title: 'Network error.', advice: 'Check the connection (or the base URL) and load again.' };
    if (/HTTP 404\b|not found/i.test(message)) return { title: 'Model file not found.', advice: 'Check the URL or the repository.' };
    if (/HTTP (401|403)\b/.test(message)) return { title: 'Access denied.', advice: 'The server refused the file (a gated repository needs a login).' };
    if (/HTTP \d/.test(message)) return { title: 'Server error.', advice: 'Load again later.' };
    if (/truncated|more than the announced/.test(message)) return { title: 'Download incomplete.', advice: 'Nothing was cached; load again.' };
    if (/web page/.test(message)) return { title: 'Model file not found.', advice: 'Check the URL.' };
    if (/partial response/.test(message)) return { title: 'Wrong answer from the server.', advice: '' };
    if (/local file/.test(message)) return { title: 'Could not read the file.', advice: '' };
  }
  if (/Weight|Safetensors|Config|Tokenizer|Source|Mismatch/i.test(name)) return { title: 'Weights missing or invalid.', advice: '' };
  return { title: 'Load failed.', advice: '' };
}
