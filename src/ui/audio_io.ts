/**
 * The page's audio graph around the worklets of src/ui/worklet_loader.ts: microphone ->
 * capture worklet (-> 24 kHz input ring, or 1920-sample frames in message mode) and output ring
 * (or frames) -> playback worklet -> speakers. Adds level meters (AnalyserNodes on the
 * microphone and on the playback output) and the worklets' counters for the metrics panel
 * (shared mode: the worklets' shared STAT block; message mode: the frames that crossed the page,
 * since the worklets' counters then live in their own threads and underruns are not visible).
 */
import { type AudioIO as WorkletIO, createAudioIO, openMicrophone } from './worklet_loader.ts';
import { STAT } from '../audio/worklet_shared.ts';
import type { RingBuffer } from '../audio/ring_buffer.ts';
import { type StampQueue, clockMs } from '../audio/frame_stamps.ts';
import { LatencyWindow, type LatencySummary } from '../engine/metrics.ts';

export interface AudioCounters {
  capturedSamples: number;
  captureOverruns: number;
  /** Microphone samples that were NaN, infinite or beyond ±16, zeroed by the capture worklet. */
  captureBadSamples: number;
  playedSamples: number;
  /** RMS of the playback output measured while samples were flowing (AnalyserNode windows). */
  playedRms: number;
  underruns: number;
  playOverruns: number;
  /** Device samples played since playback first started, and those that were underrun silence (STAT.PLAY_ACTIVE_SAMPLES / PLAY_STARVED_SAMPLES). */
  activeSamples: number;
  starvedSamples: number;
}

export interface AudioIOOptions {
  /** Message mode: called with each captured 1920-sample frame (copy before returning) and its capture stamp. */
  onCaptureFrame?: (pcm: Float32Array, stamp: number | null) => void;
  /** Microphone processing (echo cancellation, noise suppression, auto gain); default true. */
  micProcessing?: boolean;
  /** Use AUDIO_CHUNK messages even where SharedArrayBuffer exists (tests of the fallback path). */
  forcePackets?: boolean;
}

function rms(buf: Float32Array): number {
  let s = 0;
  for (let i = 0; i < buf.length; i++) s += buf[i] * buf[i];
  return Math.sqrt(s / buf.length);
}

export class AudioIO {
  private readonly inBuf: Float32Array<ArrayBuffer>;
  private readonly outBuf: Float32Array<ArrayBuffer>;
  private outSumSq = 0;
  private outCount = 0;
  private lastPlayed = 0;
  /** Message mode (the worklets' counters live in their own threads): counted here. */
  private posted = { frames: 0, sumSq: 0, captured: 0 };
  /** Message mode: the worklets' latest counters, asked for twice a second ('stats' messages). */
  private polled: { capture: Record<string, number> | null; playback: Record<string, number> | null } = { capture: null, playback: null };
  private pollTimer: ReturnType<typeof setInterval> | null = null;
  /** Pipeline latencies of the played reply frames (the playback worklet's reports). */
  private readonly latencyWindow = new LatencyWindow();

  private constructor(
    readonly context: AudioContext,
    readonly io: WorkletIO,
    /** The microphone (null in file-input mode). */
    private readonly stream: MediaStream | null,
    private readonly inAnalyser: AnalyserNode,
    private readonly outAnalyser: AnalyserNode,
  ) {
    this.inBuf = new Float32Array(inAnalyser.fftSize);
    this.outBuf = new Float32Array(outAnalyser.fftSize);
    if (io.mode === 'message') {
      const listen = (node: AudioWorkletNode | null, side: 'capture' | 'playback') => {
        node?.port.addEventListener('message', (ev: MessageEvent) => {
          const m = ev.data as { type?: string; stats?: Record<string, number>; latency?: number[] };
          if (m?.type === 'stats' && m.stats) this.polled[side] = m.stats;
          // Message mode: the playback worklet's reports ride on its 'stats' replies as [latency, play stamp] pairs.
          if (m?.type === 'stats' && Array.isArray(m.latency)) for (let i = 0; i + 1 < m.latency.length; i += 2) this.latencyWindow.add(clockMs(m.latency[i]));
        });
        node?.port.start();
      };
      listen(io.capture, 'capture');
      listen(io.playback, 'playback');
      this.pollTimer = setInterval(() => {
        io.capture?.port.postMessage({ type: 'stats' });
        io.playback.port.postMessage({ type: 'stats' });
      }, 500);
    }
  }

  /**
   * Opens the microphone (AudioSetupError naming NotAllowedError when denied) and builds the graph.
   * The returned rings (shared mode) are what the engine Worker must wrap.
   */
  static async create(opts: AudioIOOptions): Promise<AudioIO> {
    const proc = opts.micProcessing ?? true;
    let stream: MediaStream;
    try {
      stream = await openMicrophone({ echoCancellation: proc, noiseSuppression: proc, autoGainControl: proc });
    } catch (e) {
      // Keep the DOMException name visible for the page's banner.
      const msg = (e as Error).message;
      const err = new Error(msg);
      err.name = /NotAllowedError|Permission/i.test(msg) ? 'NotAllowedError' : /NotFoundError/i.test(msg) ? 'NotFoundError' : 'AudioSetupError';
      throw err;
    }
    const context = new AudioContext({ latencyHint: 'interactive' });
    const io = await createAudioIO(context, { stream, onCaptureFrame: opts.onCaptureFrame, forceMessageMode: opts.forcePackets ?? false });
    const inAnalyser = context.createAnalyser();
    inAnalyser.fftSize = 2048;
    io.source?.connect(inAnalyser);
    const outAnalyser = context.createAnalyser();
    outAnalyser.fftSize = 2048;
    io.playback.connect(outAnalyser);
    return new AudioIO(context, io, stream, inAnalyser, outAnalyser);
  }

  /**
   * Playback only, PCM as AUDIO_CHUNK messages (file-input mode: the input comes from a file, not
   * a microphone). Same counters and meters as `create` (the input meter reads silence).
   */
  static async createPlaybackOnly(): Promise<AudioIO> {
    const context = new AudioContext({ latencyHint: 'interactive' });
    const io = await createAudioIO(context, { forceMessageMode: true });
    const inAnalyser = context.createAnalyser();
    inAnalyser.fftSize = 2048;
    const outAnalyser = context.createAnalyser();
    outAnalyser.fftSize = 2048;
    io.playback.connect(outAnalyser);
    return new AudioIO(context, io, null, inAnalyser, outAnalyser);
  }

  get mode(): 'shared' | 'message' {
    return this.io.mode;
  }

  get rings(): { input: RingBuffer; output: RingBuffer } | null {
    return this.io.inputRing && this.io.outputRing ? { input: this.io.inputRing, output: this.io.outputRing } : null;
  }

  async start(): Promise<void> {
    if (this.context.state !== 'running') await this.context.resume();
  }

  async stop(): Promise<void> {
    if (this.context.state === 'running') await this.context.suspend();
    this.io.flushPlayback();
  }

  /** Message mode: one 1920-sample frame from the engine to play (posted to the playback worklet), with the capture stamp it answers. */
  playChunk(pcm: Float32Array, stamp: number | null = null): void {
    this.io.playFrame(pcm, stamp);
    this.posted.frames++;
    for (let i = 0; i < pcm.length; i++) this.posted.sumSq += pcm[i] * pcm[i];
  }

  /** Message mode: counts a captured frame (the capture worklet posts 1920-sample frames). */
  countCaptured(samples: number): void {
    this.posted.captured += samples;
  }

  /** Current RMS (linear) of the microphone and of the playback output; also accumulates the output RMS. */
  levels(): { input: number; output: number } {
    this.inAnalyser.getFloatTimeDomainData(this.inBuf);
    this.outAnalyser.getFloatTimeDomainData(this.outBuf);
    const out = rms(this.outBuf);
    const played = Atomics.load(this.io.stats, STAT.PLAY_SAMPLES);
    if (played > this.lastPlayed) {
      this.outSumSq += out * out;
      this.outCount++;
      this.lastPlayed = played;
    }
    return { input: rms(this.inBuf), output: out };
  }

  /**
   * The latest time-domain window (the analysers' fftSize = 2048 device samples, ~43 ms at 48 kHz)
   * of the microphone and of the playback output, copied into `input` / `output` (any length; the
   * first min(length, 2048) samples are written). For the page's waveform of both voices.
   */
  waveforms(input: Float32Array<ArrayBuffer>, output: Float32Array<ArrayBuffer>): void {
    this.inAnalyser.getFloatTimeDomainData(input);
    this.outAnalyser.getFloatTimeDomainData(output);
  }

  /**
   * Whether the playback worklet is filling its jitter buffer (STAT.PLAY_STATE 0: silence out,
   * at the start or after an underrun). Shared mode: its state now; message mode: as of its last
   * 'stats' reply (up to 500 ms old), false before the first.
   */
  playbackBuffering(): boolean {
    if (this.io.mode === 'message') return this.polled.playback !== null && this.polled.playback.PLAY_STATE === 0;
    return Atomics.load(this.io.stats, STAT.PLAY_STATE) === 0;
  }

  /** The AudioContext clock now as a capture stamp (24 kHz samples, Int32): file-input frames are stamped with it. */
  clockStamp(): number {
    return Math.round(this.context.currentTime * 24000) | 0;
  }

  /**
   * Pipeline latency (ms) of the reply frames played so far (window of the last 4096): shared
   * mode drains the playback worklet's report queue here; message mode adds the reports of its
   * 'stats' replies (twice a second).
   */
  latency(): LatencySummary {
    const q: StampQueue | null = this.io.reportQueue;
    q?.drain((latency) => this.latencyWindow.add(clockMs(latency)));
    return this.latencyWindow.summary();
  }

  counters(): AudioCounters {
    const s = this.io.stats;
    const get = (i: number) => Atomics.load(s, i);
    if (this.io.mode === 'message') {
      // The worklets keep private counters in this mode: samples and RMS as they crossed the
      // page, overruns and underruns from the worklets' last 'stats' replies.
      const n = this.posted.frames * 1920;
      const c = this.polled.capture;
      const p = this.polled.playback;
      return {
        capturedSamples: this.posted.captured,
        captureOverruns: c?.CAPTURE_OVERRUNS ?? 0,
        captureBadSamples: c?.CAPTURE_BAD_SAMPLES ?? 0,
        playedSamples: n,
        playedRms: n ? Math.sqrt(this.posted.sumSq / n) : 0,
        underruns: p?.PLAY_UNDERRUNS ?? 0,
        playOverruns: p?.PLAY_OVERRUNS ?? 0,
        activeSamples: p?.PLAY_ACTIVE_SAMPLES ?? 0,
        starvedSamples: p?.PLAY_STARVED_SAMPLES ?? 0,
      };
    }
    return {
      capturedSamples: get(STAT.CAPTURE_SAMPLES),
      captureOverruns: get(STAT.CAPTURE_OVERRUNS),
      captureBadSamples: get(STAT.CAPTURE_BAD_SAMPLES),
      playedSamples: get(STAT.PLAY_SAMPLES),
      playedRms: this.outCount ? Math.sqrt(this.outSumSq / this.outCount) : 0,
      underruns: get(STAT.PLAY_UNDERRUNS),
      playOverruns: get(STAT.PLAY_OVERRUNS),
      activeSamples: get(STAT.PLAY_ACTIVE_SAMPLES),
      starvedSamples: get(STAT.PLAY_STARVED_SAMPLES),
    };
  }

  close(): void {
    if (this.pollTimer !== null) clearInterval(this.pollTimer);
    this.io.close();
    for (const t of this.stream?.getTracks() ?? []) t.stop();
    void this.context.close();
  }
}
