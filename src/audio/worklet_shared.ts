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
 * Latency stamps (src/audio/frame_stamps.ts): capture dates its input with the AudioContext
 * clock (`currentFrame`, in 24 kHz samples): shared mode publishes an anchor in the input ring's
 * header after every push (RingBuffer.publishStamp), message mode posts each frame with the stamp
 * of its first sample. Playback takes (output-ring index, capture stamp) records of the reply
 * frames (a StampQueue the engine fills in shared mode; the 'frame' messages' stamps in message
 * mode) and, when a reply frame's first sample is played, reports (latency, play time) into its
 * report queue (shared: read by the page; message mode: sent with each 'stats' reply).
 *
 * Counters live in a small Int32Array (`stats`, STAT_* slots below) that the page or engine reads
 * with `Atomics.load` (or `readAudioStats`) without messages. Both processors may share one stats
 * buffer: their slots are disjoint.
 */
import { PcmFramer } from '../protocol/audio_frames.ts';
import { AUDIO_CHUNK_SAMPLES } from '../protocol/packet.ts';
import { zeroBadSamples } from '../protocol/samples.ts';
import { StampQueue, modelClock } from './frame_stamps.ts';
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
  /** Device samples output since playback first started (after its initial buffering; reset by
   *  'flush'), silence included: the denominator of the underrun share. */
  PLAY_ACTIVE_SAMPLES: 18,
  /** Of those, device samples of silence because the output ring ran dry: the unfilled tail of an
   *  underrun block and the blocks spent re-buffering after it. underrunPercent = 100 · this / PLAY_ACTIVE_SAMPLES. */
  PLAY_STARVED_SAMPLES: 19,
  /** Reply frames whose stamp was dropped unplayed (skipped by a catch-up or flush). */
  PLAY_STAMPS_UNPLAYED: 20,
  /** Latency reports lost because the report queue was full (nobody read it). */
  PLAY_REPORTS_LOST: 21,
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
  /**
   * A 24 kHz frame: capture → page, or page → playback. The Float32Array's buffer is transferred.
   * `stamp`: the capture stamp of its first sample (capture → page: always; page → playback: the
   * capture stamp of the input frame this reply was computed from, when known).
   */
  | { type: 'frame'; pcm: Float32Array; stamp?: number }
  /** Returns a transferred frame for reuse: page → capture, playback → page. */
  | { type: 'recycle'; pcm: Float32Array }
  /** Asks for a stats snapshot (answered outside process()). */
  | { type: 'stats' }
  /** `latency`: message-mode playback only, the reports since the last reply as [latency, play stamp] pairs (24 kHz samples). */
  | { type: 'stats'; stats: Record<AudioStatName, number>; latency?: number[] }
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

/** The worklet's AudioContext clock: `currentFrame` (device samples at the start of the quantum). */
export type DeviceClock = () => number;
const workletClock: DeviceClock = () => (globalThis as { currentFrame?: number }).currentFrame ?? 0;

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
  /** Message mode: stamp of the first sample of the frame being filled (then + 1920 per frame: no gaps in this mode). */
  private frameStamp = 0;
  /** The resampler's lookahead in device samples: an output sample is that much older than the input just taken. */
  private readonly lookahead: number;

  /**
   * @param clock the AudioContext time of the current render quantum in device samples (default:
   *   the worklet global `currentFrame`; tests pass a fake one).
   */
  constructor(opts: CaptureOptions, private readonly port: WorkletPort, private readonly clock: DeviceClock = workletClock) {
    this.deviceRate = opts.deviceRate ?? (globalThis as { sampleRate?: number }).sampleRate ?? MODEL_RATE;
    this.stats = new Int32Array(opts.stats ?? new ArrayBuffer(STAT_SLOTS * 4));
    Atomics.store(this.stats, STAT.DEVICE_RATE, this.deviceRate);
    this.resampler = new StreamingResampler(this.deviceRate, MODEL_RATE, MAX_BLOCK);
    this.out = new Float32Array(this.resampler.maxOutput(MAX_BLOCK));
    this.lookahead = this.resampler.latencySeconds * this.deviceRate;
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
    this.port.postMessage({ type: 'frame', pcm: f, stamp: this.frameStamp }, [f.buffer]);
    this.frameStamp = (this.frameStamp + AUDIO_CHUNK_SAMPLES) | 0;
    Atomics.add(this.stats, STAT.CAPTURE_FRAMES_POSTED, 1);
  }

  /**
   * One render quantum. `input[c]` is channel c of the microphone block (device rate); an empty
   * array (nothing connected yet) is ignored. @returns true (keep the processor alive).
   * Stamps: the sample written next (shared: the ring's write index) is dated
   * modelClock(currentFrame + end of the block − resampler lookahead).
   */
  process(input: Float32Array[]): boolean {
    const nch = input.length;
    if (nch === 0) return true;
    Atomics.add(this.stats, STAT.CAPTURE_BLOCKS, 1);
    const total = input[0].length;
    const frame0 = this.clock();
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
      // The clock of the sample after the last one produced (the resampler lags by its lookahead).
      const after = modelClock(frame0 + start + len - this.lookahead, this.deviceRate);
      if (this.ring) {
        const w = this.ring.push(this.out, 0, n);
        if (w < n) {
          Atomics.add(this.stats, STAT.CAPTURE_OVERRUNS, 1);
          Atomics.add(this.stats, STAT.CAPTURE_DROPPED, n - w);
        }
        Atomics.add(this.stats, STAT.CAPTURE_SAMPLES, w);
        this.ring.publishStamp(after);
      } else {
        // Date the n new samples: they end just before `after`; a frame starting at fill 0 takes the stamp of its first sample.
        const first = (after - n) | 0;
        if (this.framer!.buffered === 0) this.frameStamp = first;
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
  /**
   * Shared mode: StampQueue backing buffer of (output-ring index of a reply frame's first sample,
   * its capture stamp) records, filled by the engine (RingFrameSink) before it writes the frame.
   * Absent: a local queue (message mode: fed by the 'frame' messages' stamps).
   */
  stamps?: SharedArrayBuffer;
  /**
   * Shared mode: StampQueue backing buffer where each played reply frame is reported as
   * (pipeline latency, play stamp), 24 kHz samples; the page reads it. Absent: a local queue,
   * drained into each 'stats' reply (`latency`).
   */
  reports?: SharedArrayBuffer;
}

/** Records of the local stamp and report queues (message mode): 256 frames = 20 s. */
const LOCAL_STAMPS = 256;

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
  /** Reply frames to date: (output-ring index of the first sample, capture stamp). */
  readonly stamps: StampQueue;
  /** Played reply frames: (pipeline latency, play stamp), 24 kHz samples. */
  readonly reports: StampQueue;
  /** The reports queue is this core's own (message mode): it may drain it for 'stats'. */
  private readonly ownReports: boolean;
  /** Playback has started once since construction or the last flush (underrun accounting). */
  private started = false;
  /** The resampler's lookahead in 24 kHz samples: a popped sample sounds that much later in the output stream. */
  private readonly lookahead: number;

  /**
   * @param clock the AudioContext time of the current render quantum in device samples (default:
   *   the worklet global `currentFrame`; tests pass a fake one).
   */
  constructor(opts: PlaybackOptions, private readonly port: WorkletPort, private readonly clock: DeviceClock = workletClock) {
    this.deviceRate = opts.deviceRate ?? (globalThis as { sampleRate?: number }).sampleRate ?? MODEL_RATE;
    this.stats = new Int32Array(opts.stats ?? new ArrayBuffer(STAT_SLOTS * 4));
    Atomics.store(this.stats, STAT.DEVICE_RATE, this.deviceRate);
    this.messageMode = !opts.ring;
    this.ring = opts.ring ? new RingBuffer(opts.ring) : RingBuffer.create(opts.localCapacity ?? 32768, false);
    this.resampler = new StreamingResampler(MODEL_RATE, this.deviceRate, this.pull.length);
    this.resOut = new Float32Array(this.resampler.maxOutput(this.pull.length));
    this.stage = new Float32Array(MAX_BLOCK + this.resOut.length);
    this.lookahead = this.resampler.latencySeconds * MODEL_RATE;
    this.primeResampler();
    this.stamps = opts.stamps ? new StampQueue(opts.stamps) : StampQueue.create(LOCAL_STAMPS, false);
    this.ownReports = !opts.reports;
    this.reports = opts.reports ? new StampQueue(opts.reports) : StampQueue.create(LOCAL_STAMPS, false);
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
      const at = this.ring.writeIndex();
      const w = this.ring.push(m.pcm);
      if (w < m.pcm.length) Atomics.add(this.stats, STAT.PLAY_FRAME_OVERFLOWS, 1);
      else if (typeof m.stamp === 'number' && Number.isInteger(m.stamp)) this.stamps.push(at, m.stamp);
      this.port.postMessage({ type: 'recycle', pcm: m.pcm }, [m.pcm.buffer]);
    } else if (m.type === 'stats' && !('stats' in m)) {
      const latency: number[] = [];
      if (this.ownReports) this.reports.drain((a, b) => latency.push(a, b));
      this.port.postMessage({ type: 'stats', stats: readAudioStats(this.stats), ...(this.ownReports ? { latency } : {}) });
    } else if (m.type === 'flush') {
      // Only the consumer may move the read index: this handler runs on the audio thread, like process().
      this.ring.skip(this.ring.capacity);
      this.stageLen = 0;
      this.primeResampler(); // the old stream's lookahead is not played at the next start
      this.playing = false;
      this.started = false;
      Atomics.store(this.stats, STAT.PLAY_STATE, 0);
    }
  }

  /**
   * Starts the resampler's stream with its lookahead of silence (halfTaps zeros at 24 kHz, ~1 ms):
   * then every popped sample yields its device samples at once, so one buffered frame plays for
   * exactly 80 ms. Without it the first frame ran dry `lookahead` samples early at 48 kHz, an
   * underrun that raised the jitter target by half a frame for good. The dating of reply frames
   * is unchanged: a popped sample still sounds `lookahead` after the stage's end.
   */
  private primeResampler(): void {
    this.resampler.reset();
    const z = this.pull.fill(0);
    for (let left = Math.round(this.lookahead); left > 0; left -= z.length) {
      // Zeros in: no output yet (an output needs its lookahead of input beyond it).
      this.resampler.process(z, this.resOut, Math.min(left, z.length));
    }
  }

  /**
   * Dates the reply frames whose first sample is among the `n` samples just popped from ring
   * index `r`: they sound `lookahead` + (index − r) samples after `base` (the stamp of the first
   * output sample that the pop fills). Records before `r` were skipped unplayed.
   */
  private resolveStamps(r: number, n: number, base: number): void {
    const q = this.stamps;
    while (q.size() > 0) {
      const d = (q.peek(0) - r) | 0;
      if (d >= n) break;
      if (d >= 0) {
        const play = Math.round(base + d + this.lookahead) | 0;
        if (!this.reports.push((play - q.peek(1)) | 0, play)) Atomics.add(this.stats, STAT.PLAY_REPORTS_LOST, 1);
      } else {
        Atomics.add(this.stats, STAT.PLAY_STAMPS_UNPLAYED, 1);
      }
      q.drop();
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
    const frame0 = this.clock();
    if (!this.playing) {
      if (ring.availableRead() >= this.target) {
        this.playing = true;
        this.started = true;
        Atomics.store(this.stats, STAT.PLAY_STATE, 1);
      } else {
        for (let c = 0; c < output.length; c++) output[c].fill(0);
        if (this.started) {
          // Re-buffering after an underrun: this block is starved silence.
          Atomics.add(this.stats, STAT.PLAY_ACTIVE_SAMPLES, block);
          Atomics.add(this.stats, STAT.PLAY_STARVED_SAMPLES, block);
        }
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
      const at = ring.readIndex();
      const n = ring.pop(this.pull, 0, want);
      if (n === 0) {
        starved = true;
        break;
      }
      Atomics.add(this.stats, STAT.PLAY_SAMPLES, n);
      // The first output sample this pop fills sounds at the stage's current end.
      this.resolveStamps(at, n, (frame0 + this.stageLen) * ratio);
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
    Atomics.add(this.stats, STAT.PLAY_ACTIVE_SAMPLES, block);
    if (starved && k < block) Atomics.add(this.stats, STAT.PLAY_STARVED_SAMPLES, block - k);
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
