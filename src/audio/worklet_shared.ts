/**
 * The logic of the two AudioWorklet processors (workers/audio_capture_worklet.ts and
 * workers/audio_playback_worklet.ts), as plain classes so Node tests can drive them block by block.
 *
 * Capture: microphone block (device rate, any channel count) → mono → StreamingResampler to
 * 24 kHz → input RingBuffer (SharedArrayBuffer mode) or 1920-sample frames posted on the port
 * (message mode, when SharedArrayBuffer is unavailable).
 * Playback: output RingBuffer at 24 kHz (shared, or a local ring fed by port messages) → jitter
 * buffer → StreamingResampler to the device rate → every output channel.
 *
 * Finiteness: capture replaces every NaN, infinite or out-of-range (|x| > 16) microphone sample by
 * 0 before resampling and counts them (CAPTURE_BAD_SAMPLES, CAPTURE_BAD_BLOCKS).
 *
 * Audio-thread rule: `process()` allocates nothing and logs nothing; in shared mode it only touches
 * the rings (Atomics) and does arithmetic. In message mode capture posts one preallocated frame
 * (transferred) per 1920 samples; if the page has not returned frames yet, a new frame is
 * allocated and counted (CAPTURE_POOL_MISSES).
 *
 * Counters live in a small Int32Array (`stats`, STAT_* slots below) that the page or engine reads
 * with `Atomics.load` (or `readAudioStats`) without messages. Both processors may share one stats
 * buffer: their slots are disjoint.
 */
import { PcmFramer } from '../protocol/audio_frames.ts';
import { AUDIO_CHUNK_SAMPLES } from '../protocol/packet.ts';
import { zeroBadSamples } from '../protocol/samples.ts';
import { StreamingResampler } from './resample.ts';
import { RingBuffer } from './ring_buffer.ts';

/** The models' sample rate. */
export const MODEL_RATE = 24000;
export const CAPTURE_PROCESSOR = 'solace-capture';
export const PLAYBACK_PROCESSOR = 'solace-playback';

/** Slots of the stats Int32Array. */
export const STAT = {
  /** process() calls of the capture processor that received input (render quanta before the
   *  microphone is connected bring no channels and are not counted). */
  CAPTURE_BLOCKS: 0,
  /** 24 kHz samples delivered (ring or frames). */
  CAPTURE_SAMPLES: 1,
  /** Blocks in which the input ring was full. */
  CAPTURE_OVERRUNS: 2,
  /** 24 kHz samples lost to a full input ring. */
  CAPTURE_DROPPED: 3,
  /** Frames posted on the port (message mode). */
  CAPTURE_FRAMES_POSTED: 4,
  /** Message mode: frames allocated because none had been returned. */
  CAPTURE_POOL_MISSES: 5,
  /** Microphone samples that were NaN, infinite or beyond ±16 (src/protocol/samples.ts), replaced by 0
   *  before the resampler: they never reach the ring, the frames or the codec's streaming state. */
  CAPTURE_BAD_SAMPLES: 6,
  /** Blocks (render quanta) that held at least one such sample. */
  CAPTURE_BAD_BLOCKS: 7,
  /** process() calls of the playback processor. */
  PLAY_BLOCKS: 8,
  /** 24 kHz samples taken from the output ring. */
  PLAY_SAMPLES: 9,
  /** Blocks that ran out of samples while playing (then re-buffering). */
  PLAY_UNDERRUNS: 10,
  /** Times the ring held more than the latency cap and playback skipped ahead. */
  PLAY_OVERRUNS: 11,
  /** 24 kHz samples skipped by those catch-ups. */
  PLAY_SKIPPED: 12,
  /** Current jitter target, 24 kHz samples buffered before playing starts (grows on underrun). */
  PLAY_JITTER_TARGET: 13,
  /** Output ring fill after the last block, 24 kHz samples. */
  PLAY_FILL: 14,
  /** 0 = buffering (silence), 1 = playing. */
  PLAY_STATE: 15,
  /** Message mode: frames that did not fit the local playback ring (samples dropped). */
  PLAY_FRAME_OVERFLOWS: 16,
  /** Device sample rate seen by the processors. */
  DEVICE_RATE: 17,
} as const;
export const STAT_SLOTS = 32;
export type AudioStatName = keyof typeof STAT;

/** A stats block over a SharedArrayBuffer when available (readable from any thread), else an ArrayBuffer. */
export function createAudioStats(shared = typeof SharedArrayBuffer !== 'undefined'): Int32Array {
  return new Int32Array(shared ? new SharedArrayBuffer(STAT_SLOTS * 4) : new ArrayBuffer(STAT_SLOTS * 4));
}

/** Snapshot of every named counter. */
export function readAudioStats(stats: Int32Array): Record<AudioStatName, number> {
  const out = {} as Record<AudioStatName, number>;
  for (const [k, i] of Object.entries(STAT)) out[k as AudioStatName] = Atomics.load(stats, i);
  return out;
}

/** Messages on a worklet's port (message mode and stats requests). Never sent from process() except 'frame' by capture. */
export type WorkletMessage =
  /** A 24 kHz frame: capture → page, or page → playback. The Float32Array's buffer is transferred. */
  | { type: 'frame'; pcm: Float32Array }
  /** Returns a transferred frame for reuse: page → capture, playback → page. */
  | { type: 'recycle'; pcm: Float32Array }
  /** Asks for a stats snapshot (answered outside process()). */
  | { type: 'stats' }
  | { type: 'stats'; stats: Record<AudioStatName, number> }
  /** Playback: drop everything buffered (barge-in / reset), back to buffering. */
  | { type: 'flush' };

/** Minimal port surface the cores use (MessagePort in a worklet; a stub in tests). */
export interface WorkletPort {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  onmessage: ((ev: MessageEvent) => void) | null;
}

export interface CaptureOptions {
  /** Input ring (24 kHz) backing buffer; absent → message mode (frames on the port). */
  ring?: SharedArrayBuffer;
  /** Stats block (STAT slots); absent → a private one (read it with a 'stats' message). */
  stats?: SharedArrayBuffer;
  /** Device rate; default: the worklet global `sampleRate`. */
  deviceRate?: number;
  /** Message mode: frames preallocated for posting (default 16 = 1.28 s). */
  poolFrames?: number;
}

/** Largest render quantum handled in one resampler pass (larger blocks are split). */
const MAX_BLOCK = 1024;

/** Capture processor core: see the module comment. */
export class CaptureCore {
  readonly stats: Int32Array;
  readonly ring: RingBuffer | null;
  readonly deviceRate: number;
  private readonly resampler: StreamingResampler;
  private readonly mono = new Float32Array(MAX_BLOCK);
  private readonly out: Float32Array;
  private readonly framer: PcmFramer | null;
  private readonly pool: Float32Array[] = [];

  constructor(opts: CaptureOptions, private readonly port: WorkletPort) {
    this.deviceRate = opts.deviceRate ?? (globalThis as { sampleRate?: number }).sampleRate ?? MODEL_RATE;
    this.stats = new Int32Array(opts.stats ?? new ArrayBuffer(STAT_SLOTS * 4));
    Atomics.store(this.stats, STAT.DEVICE_RATE, this.deviceRate);
    this.resampler = new StreamingResampler(this.deviceRate, MODEL_RATE, MAX_BLOCK);
    this.out = new Float32Array(this.resampler.maxOutput(MAX_BLOCK));
    this.ring = opts.ring ? new RingBuffer(opts.ring) : null;
    if (this.ring) {
      this.framer = null;
    } else {
      for (let i = 0; i < (opts.poolFrames ?? 16); i++) this.pool.push(new Float32Array(AUDIO_CHUNK_SAMPLES));
      this.framer = new PcmFramer((frame) => this.postFrame(frame));
    }
    port.onmessage = (ev) => this.onMessage(ev.data as WorkletMessage);
  }

  private onMessage(m: WorkletMessage): void {
    if (m.type === 'recycle' && m.pcm instanceof Float32Array && m.pcm.length === AUDIO_CHUNK_SAMPLES) this.pool.push(m.pcm);
    else if (m.type === 'stats' && !('stats' in m)) this.port.postMessage({ type: 'stats', stats: readAudioStats(this.stats) });
  }

  private postFrame(frame: Float32Array): void {
    let f = this.pool.pop();
    if (!f) {
      f = new Float32Array(AUDIO_CHUNK_SAMPLES);
      Atomics.add(this.stats, STAT.CAPTURE_POOL_MISSES, 1);
    }
    for (let i = 0; i < AUDIO_CHUNK_SAMPLES; i++) f[i] = frame[i];
    this.port.postMessage({ type: 'frame', pcm: f }, [f.buffer]);
    Atomics.add(this.stats, STAT.CAPTURE_FRAMES_POSTED, 1);
  }

  /**
   * One render quantum. `input[c]` is channel c of the microphone block (device rate); an empty
   * array (nothing connected yet) is ignored. @returns true (keep the processor alive).
   */
  process(input: Float32Array[]): boolean {
    const nch = input.length;
    if (nch === 0) return true;
    Atomics.add(this.stats, STAT.CAPTURE_BLOCKS, 1);
    const total = input[0].length;
    for (let start = 0; start < total; start += MAX_BLOCK) {
      const len = Math.min(MAX_BLOCK, total - start);
      const mono = this.mono;
      if (nch === 1) {
        const c0 = input[0];
        for (let i = 0; i < len; i++) mono[i] = c0[start + i];
      } else {
        const g = 1 / nch;
        for (let i = 0; i < len; i++) {
          let s = 0;
          for (let c = 0; c < nch; c++) s += input[c][start + i];
          mono[i] = s * g;
        }
      }
      // A NaN / infinite / absurd sample would poison the resampler and the codec state: zero it, count it.
      const bad = zeroBadSamples(mono, 0, len);
      if (bad > 0) {
        Atomics.add(this.stats, STAT.CAPTURE_BAD_SAMPLES, bad);
        Atomics.add(this.stats, STAT.CAPTURE_BAD_BLOCKS, 1);
      }
      const n = this.resampler.process(mono, this.out, len);
      if (n === 0) continue;
      if (this.ring) {
        const w = this.ring.push(this.out, 0, n);
        if (w < n) {
          Atomics.add(this.stats, STAT.CAPTURE_OVERRUNS, 1);
          Atomics.add(this.stats, STAT.CAPTURE_DROPPED, n - w);
        }
        Atomics.add(this.stats, STAT.CAPTURE_SAMPLES, w);
      } else {
        this.framer!.push(this.out, 0, n);
        Atomics.add(this.stats, STAT.CAPTURE_SAMPLES, n);
      }
    }
    return true;
  }
}

export interface JitterOptions {
  /** Samples (24 kHz) buffered before playback starts (default 1920 = 80 ms). */
  initial?: number;
  /** Added to the target after each underrun (default 960 = 40 ms). */
  step?: number;
  /** Largest target (default 9600 = 400 ms). */
  max?: number;
  /** Fill beyond the target (24 kHz samples) that triggers a skip back to the target (default 5760 = 240 ms). */
  maxExcess?: number;
}

export interface PlaybackOptions {
  /** Output ring (24 kHz) backing buffer; absent → message mode (a local ring fed by 'frame' messages). */
  ring?: SharedArrayBuffer;
  stats?: SharedArrayBuffer;
  deviceRate?: number;
  jitter?: JitterOptions;
  /** Message mode: local ring capacity in samples (default 32768 ≈ 1.37 s). */
  localCapacity?: number;
}

/** Playback processor core: see the module comment. */
export class PlaybackCore {
  readonly stats: Int32Array;
  readonly ring: RingBuffer;
  readonly deviceRate: number;
  private readonly resampler: StreamingResampler;
  private readonly pull = new Float32Array(256);
  private readonly resOut: Float32Array;
  /** Device-rate samples resampled but not yet played. */
  private readonly stage: Float32Array;
  private stageLen = 0;
  private playing = false;
  private target: number;
  private readonly step: number;
  private readonly maxTarget: number;
  private readonly maxExcess: number;
  private readonly messageMode: boolean;

  constructor(opts: PlaybackOptions, private readonly port: WorkletPort) {
    this.deviceRate = opts.deviceRate ?? (globalThis as { sampleRate?: number }).sampleRate ?? MODEL_RATE;
    this.stats = new Int32Array(opts.stats ?? new ArrayBuffer(STAT_SLOTS * 4));
    Atomics.store(this.stats, STAT.DEVICE_RATE, this.deviceRate);
    this.messageMode = !opts.ring;
    this.ring = opts.ring ? new RingBuffer(opts.ring) : RingBuffer.create(opts.localCapacity ?? 32768, false);
    this.resampler = new StreamingResampler(MODEL_RATE, this.deviceRate, this.pull.length);
    this.resOut = new Float32Array(this.resampler.maxOutput(this.pull.length));
    this.stage = new Float32Array(MAX_BLOCK + this.resOut.length);
    const j = opts.jitter ?? {};
    this.target = j.initial ?? 1920;
    this.step = j.step ?? 960;
    this.maxTarget = Math.min(j.max ?? 9600, this.ring.capacity);
    this.maxExcess = j.maxExcess ?? 5760;
    if (this.target > this.maxTarget) this.target = this.maxTarget;
    Atomics.store(this.stats, STAT.PLAY_JITTER_TARGET, this.target);
    port.onmessage = (ev) => this.onMessage(ev.data as WorkletMessage);
  }

  /** Current jitter target in 24 kHz samples. */
  get jitterTarget(): number {
    return this.target;
  }

  get isPlaying(): boolean {
    return this.playing;
  }

  private onMessage(m: WorkletMessage): void {
    if (m.type === 'frame' && m.pcm instanceof Float32Array) {
      if (!this.messageMode) return;
      const w = this.ring.push(m.pcm);
      if (w < m.pcm.length) Atomics.add(this.stats, STAT.PLAY_FRAME_OVERFLOWS, 1);
      this.port.postMessage({ type: 'recycle', pcm: m.pcm }, [m.pcm.buffer]);
    } else if (m.type === 'stats' && !('stats' in m)) {
      this.port.postMessage({ type: 'stats', stats: readAudioStats(this.stats) });
    } else if (m.type === 'flush') {
      // Only the consumer may move the read index: this handler runs on the audio thread, like process().
      this.ring.skip(this.ring.capacity);
      this.stageLen = 0;
      this.playing = false;
      Atomics.store(this.stats, STAT.PLAY_STATE, 0);
    }
  }

  /**
   * One render quantum: fills every channel of `output` (device rate) with the same mono signal,
   * silence while buffering. @returns true (keep the processor alive).
   */
  process(output: Float32Array[]): boolean {
    Atomics.add(this.stats, STAT.PLAY_BLOCKS, 1);
    if (output.length === 0) return true;
    const block = Math.min(output[0].length, MAX_BLOCK);
    const ring = this.ring;
    if (!this.playing) {
      if (ring.availableRead() >= this.target) {
        this.playing = true;
        Atomics.store(this.stats, STAT.PLAY_STATE, 1);
      } else {
        for (let c = 0; c < output.length; c++) output[c].fill(0);
        Atomics.store(this.stats, STAT.PLAY_FILL, ring.availableRead());
        return true;
      }
    }
    // Latency cap: far more buffered than the target means the producer ran ahead; catch up.
    const avail = ring.availableRead();
    if (avail > this.target + this.maxExcess) {
      const skipped = ring.skip(avail - this.target);
      Atomics.add(this.stats, STAT.PLAY_OVERRUNS, 1);
      Atomics.add(this.stats, STAT.PLAY_SKIPPED, skipped);
    }
    // Top up the device-rate stage from the ring through the resampler.
    const ratio = MODEL_RATE / this.deviceRate;
    let starved = false;
    while (this.stageLen < block) {
      const want = Math.min(this.pull.length, Math.max(1, Math.ceil((block - this.stageLen) * ratio)));
      const n = ring.pop(this.pull, 0, want);
      if (n === 0) {
        starved = true;
        break;
      }
      Atomics.add(this.stats, STAT.PLAY_SAMPLES, n);
      const r = this.resampler.process(this.pull, this.resOut, n);
      for (let i = 0; i < r; i++) this.stage[this.stageLen + i] = this.resOut[i];
      this.stageLen += r;
    }
    const k = Math.min(block, this.stageLen);
    for (let c = 0; c < output.length; c++) {
      const ch = output[c];
      for (let i = 0; i < k; i++) ch[i] = this.stage[i];
      for (let i = k; i < ch.length; i++) ch[i] = 0;
    }
    this.stage.copyWithin(0, k, this.stageLen);
    this.stageLen -= k;
    if (starved && k < block) {
      // Underrun: play what there was, then re-buffer to a larger target.
      Atomics.add(this.stats, STAT.PLAY_UNDERRUNS, 1);
      this.target = Math.min(this.maxTarget, this.target + this.step);
      Atomics.store(this.stats, STAT.PLAY_JITTER_TARGET, this.target);
      this.playing = false;
      Atomics.store(this.stats, STAT.PLAY_STATE, 0);
    }
    Atomics.store(this.stats, STAT.PLAY_FILL, ring.availableRead());
    return true;
  }
}
