/**
 * The page side of the engine: starts workers/engine_worker.ts (comlink for control, a
 * MessageChannel + packet Channel for text, metrics and — without SharedArrayBuffer — PCM),
 * and the audio graph: microphone -> capture worklet -> input ring -> engine -> output ring ->
 * playback worklet -> speakers. Level meters read AnalyserNodes on the microphone and on the
 * playback output.
 */
import * as Comlink from 'comlink';
import { installErrorTransfer } from '../engine/worker_errors.ts';
import type { MetricsSnapshot } from '../engine/metrics.ts';
import type { CaptionEndMeta, CaptionMeta, ConversationRecording, EngineMeta, EngineWorkerApi, LoadEvent, ModelInfo, ModelSpec, SamplingSettings } from '../engine/worker_api.ts';
import type { AdapterSummary } from '../gpu/context.ts';
import { Channel } from '../protocol/channel.ts';
import { DEFAULT_HUB_BASE, DEFAULT_REPO } from '../weights/sources.ts';
import { PacketType } from '../protocol/packet.ts';
import { AudioIO } from './audio_io.ts';
import { TranscriptAssembler } from '../engine/transcript.ts';
import { FRAME_SAMPLES } from '../engine/metrics.ts';

/** Defaults of the hub source: the released bf16 Moshi (moshiko) with Mimi and the tokenizer. */
export const HUB_DEFAULTS = { baseUrl: DEFAULT_HUB_BASE, repo: DEFAULT_REPO } as const;

/** Events the client forwards to the page. */
export type ClientEvent =
  | LoadEvent
  /** The transcript so far (committed TEXT_FINAL text + the partial tail), after a text packet. */
  | { type: 'text'; transcript: string; newSection?: true }
  /** A side of the packet channel stopped (or resumed) hearing the other's heartbeats. */
  | { type: 'peer'; state: 'silent' | 'alive'; side: 'engine' | 'page'; silentForMs: number }
  | { type: 'device-lost'; message: string }
  | { type: 'error'; message: string }
  /** The engine found non-finite input, logits or output in a step (it keeps running; later ones are counted in metrics.nonFinite). */
  | { type: 'warning'; message: string }
  /** A speech-to-text model's step (token, text, time, extra-head probabilities), in step order as received. */
  | { type: 'caption'; caption: CaptionMeta }
  /** A speech-to-text run ended (Stop, or the played file ran out): every caption has been sent. */
  | { type: 'caption-end'; end: CaptionEndMeta };

export class EngineClient {
  private metrics: MetricsSnapshot | null = null;
  private audio: AudioIO | null = null;
  private channel: Channel | null = null;
  private running = false;
  private readonly transcript = new TranscriptAssembler();
  private inputKind: 'mic' | 'file' | '' = '';
  private fileTimer: ReturnType<typeof setInterval> | null = null;

  private constructor(
    private readonly worker: Worker,
    private readonly api: Comlink.Remote<EngineWorkerApi>,
    readonly adapter: AdapterSummary,
    private readonly emit: (e: ClientEvent) => void,
    /** Microphone processing (echo cancellation etc.); off for automated runs with a fake microphone. */
    private readonly micProcessing: boolean,
    /** AUDIO_CHUNK packets even where SharedArrayBuffer exists. */
    private readonly forcePackets: boolean,
    /** Skip Moshi's decodes while the loop is behind real time (StartOptions.catchUp). */
    private readonly catchUp: boolean,
  ) {}

  /**
   * Starts the engine Worker and its GPU device. Throws WebGPUUnavailableError (from the worker)
   * when WebGPU or an adapter is missing.
   */
  static async create(emit: (e: ClientEvent) => void, opts: { micProcessing?: boolean; forcePackets?: boolean; catchUp?: boolean } = {}): Promise<EngineClient> {
    const worker = new Worker(new URL('../../workers/engine_worker.ts', import.meta.url), { type: 'module', name: 'solacelive-engine' });
    installErrorTransfer(); // the worker's errors arrive with their fields (ModelSourceError's code, status, file)
    const api = Comlink.wrap<EngineWorkerApi>(worker);
    try {
      const adapter = await api.init(Comlink.proxy((message: string) => emit({ type: 'device-lost', message })));
      return new EngineClient(worker, api, adapter, emit, opts.micProcessing ?? true, opts.forcePackets ?? false, opts.catchUp ?? true);
    } catch (e) {
      worker.terminate();
      throw e;
    }
  }

  /** 'shared' (SharedArrayBuffer rings) or 'packets' (AUDIO_CHUNK messages); '' before the first start. */
  get transport(): 'shared' | 'packets' | '' {
    return this.audio ? (this.audio.mode === 'shared' ? 'shared' : 'packets') : '';
  }

  private onMeta(m: EngineMeta): void {
    if (!m || typeof m !== 'object') return;
    if (m.kind === 'metrics') {
      const { kind: _k, ...snap } = m;
      this.metrics = snap;
    } else if (m.kind === 'device-lost') this.emit({ type: 'device-lost', message: m.message });
    else if (m.kind === 'peer') this.emit({ type: 'peer', state: m.state, side: 'page', silentForMs: m.silentForMs });
    else if (m.kind === 'error') this.emit({ type: 'error', message: `${m.name}: ${m.message}` });
    else if (m.kind === 'warning') this.emit({ type: 'warning', message: m.message });
    else if (m.kind === 'caption') this.emit({ type: 'caption', caption: m });
    else if (m.kind === 'caption-end') {
      if (this.fileTimer !== null) clearInterval(this.fileTimer);
      this.fileTimer = null;
      this.running = false;
      this.emit({ type: 'caption-end', end: m });
    }
  }

  /**
   * Loads a model in the worker; progress events go to the page. One load at a time: the worker
   * cancels a load still running and disposes the previous model first. Aborting `signal` cancels
   * the load in the worker (its downloads and uploads stop, nothing is cached) and rejects at once
   * with an AbortError.
   */
  async load(spec: ModelSpec, sampling: SamplingSettings, signal?: AbortSignal): Promise<ModelInfo> {
    if (this.running) await this.stop();
    signal?.throwIfAborted();
    const p = this.api.load(spec, sampling, Comlink.proxy((e: LoadEvent) => this.emit(e)));
    if (!signal) return p;
    let onAbort = () => {};
    const cancelled = new Promise<never>((_, reject) => {
      onAbort = () => {
        void this.api.cancelLoad().catch(() => false);
        reject(new DOMException('loading was cancelled', 'AbortError'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([p, cancelled]);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Starts a conversation. `{ kind: 'mic' }` (default) opens the microphone (NotAllowedError when
   * denied), builds the worklet graph, connects the engine to its rings (or to AUDIO_CHUNK
   * packets) and starts the loop. `{ kind: 'file', pcm }` (file-input mode) plays a recording
   * to Moshi instead: `pcm` (24 kHz mono) goes to the engine as AUDIO_CHUNK packets, one
   * 1920-sample frame every 80 ms as a microphone would deliver it, then silence; the reply plays
   * as usual. With `endAtFileEnd` (Transcribe mode) only the file's frames are sent (the last one
   * zero-filled) and the engine is told its length: a speech-to-text model reads exactly those
   * samples, feeds its right padding and ends the run by itself ('caption-end').
   */
  async start(input: { kind: 'mic'; record?: boolean } | { kind: 'file'; pcm: Float32Array; endAtFileEnd?: boolean; record?: boolean } = { kind: 'mic' }): Promise<void> {
    if (this.audio && this.inputKind !== input.kind) {
      // Another input: rebuild the audio graph and the engine's transport.
      this.audio.close();
      this.audio = null;
      this.channel?.close();
      this.channel = null;
    }
    this.inputKind = input.kind;
    if (!this.audio) {
      const mc = new MessageChannel();
      // Heartbeats every 5 s both ways; a worker silent for 12 s is reported.
      const channel = new Channel(mc.port1, { heartbeatMs: 5000, silenceMs: 12000, tickMs: 250 });
      this.channel = channel;
      channel.on('peer-silent', ({ silentForMs }) => this.emit({ type: 'peer', state: 'silent', side: 'engine', silentForMs }));
      channel.on('peer-alive', ({ silentForMs }) => this.emit({ type: 'peer', state: 'alive', side: 'engine', silentForMs }));
      let audioRef: AudioIO | null = null;
      const audio = input.kind === 'file'
        ? await AudioIO.createPlaybackOnly()
        : await AudioIO.create({
          micProcessing: this.micProcessing,
          forcePackets: this.forcePackets,
          onCaptureFrame: (pcm, stamp) => {
            channel.sendAudio(pcm.slice(), false, stamp);
            audioRef?.countCaptured(pcm.length);
          },
        });
      audioRef = audio;
      this.audio = audio;
      channel.on('packet', (p) => {
        if (p.type === PacketType.TEXT_FINAL) {
          this.transcript.onFinal(p.seq, p.text);
          this.emit({ type: 'text', transcript: this.transcript.text });
        } else if (p.type === PacketType.TEXT_PARTIAL) {
          if (this.transcript.onPartial(p.seq, p.text)) this.emit({ type: 'text', transcript: this.transcript.text });
        }
        else if (p.type === PacketType.METADATA) this.onMeta(p.meta as EngineMeta);
        else if (p.type === PacketType.AUDIO_CHUNK) audio.playChunk(p.pcm, p.stamp ?? null);
      });
      const rings = audio.rings;
      await this.api.connect(
        Comlink.transfer(mc.port2, [mc.port2]),
        rings
          ? { kind: 'shared', input: rings.input.buffer as SharedArrayBuffer, output: rings.output.buffer as SharedArrayBuffer, stamps: audio.io.stampQueue?.buffer as SharedArrayBuffer | undefined }
          : { kind: 'packets' },
      );
    }
    // Each conversation is a new transcript section (and may come over a new channel, whose seqs start again).
    this.transcript.startSection();
    this.emit({ type: 'text', transcript: this.transcript.text, newSection: true });
    await this.audio.start();
    const endAtFileEnd = input.kind === 'file' && input.endAtFileEnd === true;
    await this.api.start({ ...(endAtFileEnd ? { endAfterSamples: input.pcm.length } : {}), ...(input.record ? { record: true } : {}), ...(this.catchUp ? {} : { catchUp: false }) });
    this.running = true;
    if (input.kind === 'file') this.feedFile(input.pcm, endAtFileEnd);
  }

  /** File-input mode: one frame of `pcm` every 80 ms as AUDIO_CHUNK packets, then silence until stop() (or nothing more with `onlyFile`). */
  private feedFile(pcm: Float32Array, onlyFile = false): void {
    const channel = this.channel;
    const audio = this.audio;
    if (!channel || !audio) return;
    const frames = Math.ceil(pcm.length / FRAME_SAMPLES);
    const t0 = performance.now();
    let sent = 0;
    const tick = () => {
      // Catch up on timer jitter: send every frame whose 80 ms slot has started.
      const due = Math.floor((performance.now() - t0) / 80) + 1;
      if (onlyFile && sent >= frames && this.fileTimer !== null) {
        clearInterval(this.fileTimer);
        this.fileTimer = null;
        return;
      }
      for (; sent < due && !(onlyFile && sent >= frames); sent++) {
        const f = new Float32Array(FRAME_SAMPLES);
        if (sent < frames) f.set(pcm.subarray(sent * FRAME_SAMPLES, Math.min((sent + 1) * FRAME_SAMPLES, pcm.length)));
        // Stamped as a microphone frame ending now would be: its first sample 80 ms ago on the AudioContext clock.
        channel.sendAudio(f, false, (audio.clockStamp() - FRAME_SAMPLES) | 0);
        audio.countCaptured(FRAME_SAMPLES);
      }
    };
    tick();
    this.fileTimer = setInterval(tick, 20);
  }

  async stop(): Promise<void> {
    if (this.fileTimer !== null) clearInterval(this.fileTimer);
    this.fileTimer = null;
    await this.api.stop();
    await this.audio?.stop();
    this.running = false;
  }

  /** The last conversation started with `record` (src/engine/conversation_record.ts), or null; after Stop. */
  recording(): Promise<ConversationRecording | null> {
    return this.api.recording();
  }

  setSampling(s: SamplingSettings): Promise<void> {
    return this.api.setSampling(s);
  }

  /** The latest metrics (METADATA packets while running, else asked through comlink), with the worklets' and the page channel's counters merged. */
  async stats(): Promise<MetricsSnapshot> {
    const m = this.running && this.metrics ? this.metrics : await this.api.stats();
    const a = this.audio?.counters();
    const rings = this.audio?.rings;
    const ch = this.channel?.stats();
    const malformed = ch ? Object.values(ch.malformed).reduce((x, y) => x + y, 0) + ch.lost + ch.badReceipts : 0;
    const dropped = { ...m.droppedPackets };
    if (ch) for (const [k, v] of Object.entries(ch.dropped)) if (v > 0) dropped[k] = (dropped[k] ?? 0) + v;
    return {
      ...m,
      underruns: a?.underruns ?? m.underruns,
      overruns: m.overruns + (a ? a.captureOverruns + a.playOverruns : 0),
      inputQueueSamples: rings ? rings.input.availableRead() : m.inputQueueSamples,
      outputQueueSamples: rings ? rings.output.availableRead() : m.outputQueueSamples,
      droppedPackets: dropped,
      protocolErrors: m.protocolErrors + malformed,
      // Microphone samples the capture worklet zeroed count as bad input too.
      nonFinite: { ...m.nonFinite, inputSamples: m.nonFinite.inputSamples + (a?.captureBadSamples ?? 0) },
      // Mic → speaker: the playback worklet's reports of the reply frames it played.
      ...(this.audio ? { latencyMs: this.audio.latency(), underrunPercent: a && a.activeSamples > 0 ? (100 * a.starvedSamples) / a.activeSamples : 0 } : {}),
    };
  }

  /** RMS levels (linear) of the microphone and of the playback output, for the meters. */
  levels(): { input: number; output: number } {
    return this.audio?.levels() ?? { input: 0, output: 0 };
  }

  /** The latest waveform windows of the microphone and of Moshi's voice (AudioIO.waveforms); false before audio started. */
  waveforms(input: Float32Array<ArrayBuffer>, output: Float32Array<ArrayBuffer>): boolean {
    if (!this.audio) return false;
    this.audio.waveforms(input, output);
    return true;
  }

  /** Whether the playback worklet is filling its jitter buffer (outputting silence); false before audio started (AudioIO.playbackBuffering). */
  playbackBuffering(): boolean {
    return this.audio?.playbackBuffering() ?? false;
  }

  /** Samples the playback worklet consumed from the engine, their RMS, and underruns. */
  played(): { samples: number; rms: number; underruns: number } {
    const c = this.audio?.counters();
    return { samples: c?.playedSamples ?? 0, rms: c?.playedRms ?? 0, underruns: c?.underruns ?? 0 };
  }

  /** Samples the capture worklet delivered and capture overruns. */
  captured(): { samples: number; overruns: number } {
    const c = this.audio?.counters();
    return { samples: c?.capturedSamples ?? 0, overruns: c?.captureOverruns ?? 0 };
  }

  dispose(): void {
    if (this.fileTimer !== null) clearInterval(this.fileTimer);
    this.channel?.close();
    this.worker.terminate();
    this.audio?.close();
  }
}
