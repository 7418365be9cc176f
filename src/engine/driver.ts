/**
 * Drives an Engine: pulls whole 1920-sample frames from an input source (ring buffer, packets,
 * a file), runs one step per frame and pushes each step's 1920 output samples to a sink.
 * The same driver serves the browser engine Worker (ring/packet sources, real time) and the
 * Node CLI (file source, as fast as the GPU allows).
 */
import type { Engine, StepResult } from './engine.ts';
import { FRAME_SAMPLES } from './metrics.ts';

/**
 * Where the driver reads input frames from.
 *
 * Stamps (mic → speaker latency, src/audio/frame_stamps.ts): a source that knows when a frame was
 * captured says so through `stamp()`, the capture clock of the frame's first sample (an Int32 in
 * 24 kHz samples that wraps). The driver hands it to Engine.step, and the sink gets the reply
 * frame computed from that input frame with the same stamp.
 */
export interface FrameSource {
  /** Copies the next 1920 samples into `out` and returns true, or returns false when no whole frame is buffered yet. */
  pull(out: Float32Array): boolean;
  /** The capture stamp of the frame the last successful `pull` returned, or null when unknown. */
  stamp?(): number | null;
  /** True once no further frame will ever arrive (end of a file). */
  readonly ended: boolean;
  /** Resolves when more input may be available, or after at most `timeoutMs`. */
  wait(timeoutMs: number): Promise<void>;
  /** Samples currently buffered (queue depth for the metrics). */
  queued(): number;
}

/**
 * Waits for the next whole frame of `source` in `out`: true when one was pulled, false once the
 * source has ended or `stopped()` turns true (checked before every pull). Between pulls it calls
 * `onIdle` and waits up to `pollMs` on the source. The input loop of EngineDriver and SttLoop.
 */
export async function nextFrame(source: FrameSource, out: Float32Array, pollMs: number, stopped: () => boolean, onIdle?: () => void): Promise<boolean> {
  while (!stopped()) {
    if (source.pull(out)) return true;
    if (source.ended) return false;
    onIdle?.();
    await source.wait(pollMs);
  }
  return false;
}

/**
 * What EngineDriver and SttLoop share: one run at a time over 1920-sample input frames, `stop()`
 * after the current frame, and a failed run that calls `onError` before it rejects.
 */
export abstract class FrameLoop {
  private running = false;
  protected stopRequested = false;
  protected readonly frame = new Float32Array(FRAME_SAMPLES);

  get isRunning(): boolean {
    return this.running;
  }

  /** Asks the loop to stop after the current frame (SttLoop then flushes its last words). */
  stop(): void {
    this.stopRequested = true;
  }

  /**
   * Runs `body` as the loop's run.
   * @throws Error `${name}.run: already running` while a run is in progress; whatever `body` throws, after `onError`
   */
  protected async runOnce(name: string, onError: ((e: unknown) => void) | undefined, body: () => Promise<void>): Promise<void> {
    if (this.running) throw new Error(`${name}.run: already running`);
    this.running = true;
    this.stopRequested = false;
    try {
      await body();
    } catch (e) {
      onError?.(e);
      throw e;
    } finally {
      this.running = false;
    }
  }
}

/** Where the driver writes each step's output. */
export interface FrameSink {
  /**
   * Takes 1920 samples and the capture stamp of the input frame they answer (null: unknown);
   * returns false when they were dropped (sink full: an overrun).
   */
  push(pcm: Float32Array, stamp: number | null): boolean;
  /** Samples currently buffered in the sink (queue depth for the metrics). */
  queued(): number;
}

/**
 * A whole PCM array as a source: frame t = samples [1920t, 1920(t+1)); the tail is zero-padded to
 * a whole frame. Its stamp is the frame's sample position in the array (1920t).
 */
export class ArrayFrameSource implements FrameSource {
  private pos = 0;
  private last: number | null = null;
  readonly frames: number;
  constructor(private readonly pcm: Float32Array) {
    this.frames = Math.ceil(pcm.length / FRAME_SAMPLES);
  }
  get ended(): boolean {
    return this.pos >= this.frames * FRAME_SAMPLES;
  }
  pull(out: Float32Array): boolean {
    if (this.ended) return false;
    const end = Math.min(this.pos + FRAME_SAMPLES, this.pcm.length);
    out.fill(0);
    out.set(this.pcm.subarray(this.pos, end));
    this.last = this.pos | 0;
    this.pos += FRAME_SAMPLES;
    return true;
  }
  stamp(): number | null {
    return this.last;
  }
  async wait(): Promise<void> {}
  queued(): number {
    return Math.max(0, this.pcm.length - this.pos);
  }
}

/** Collects every output frame in memory (the CLI's reply). */
export class ArrayFrameSink implements FrameSink {
  readonly frames: Float32Array[] = [];
  /** The stamp each frame came with (ArrayFrameSource: the input frame's sample position). */
  readonly stamps: (number | null)[] = [];
  push(pcm: Float32Array, stamp: number | null = null): boolean {
    this.frames.push(pcm.slice());
    this.stamps.push(stamp);
    return true;
  }
  queued(): number {
    return 0;
  }
  /** All frames concatenated. */
  concat(): Float32Array {
    const out = new Float32Array(this.frames.length * FRAME_SAMPLES);
    this.frames.forEach((f, i) => out.set(f, i * FRAME_SAMPLES));
    return out;
  }
}

export interface DriverCallbacks {
  /** Called after every step, after its PCM went to the sink, with the step's input frame (f32 [1920], reused: copy what you keep). */
  onStep?: (r: StepResult, input: Float32Array) => void;
  /** Called when the loop stops because of an error (the loop does not continue after one). */
  onError?: (e: unknown) => void;
  /** Called once per loop iteration that found no frame, before waiting (to pump heartbeats, stats). */
  onIdle?: () => void;
}

/** Backpressure policy of the driver (real-time sources only; a file source needs none). */
export interface CatchUpOptions {
  /**
   * Input backlog (samples still queued after taking a frame) at or above which steps skip
   * their Mimi decode (StepOptions.skipDecode) until the backlog is below one frame again: the
   * loop sheds a third of its work to catch up with real time instead of dropping input.
   * Default: none (never skip for lag).
   */
  skipDecodeBacklog?: number;
}

/**
 * Runs the loop. `run()` resolves when the source ended or `stop()` was called; it rejects
 * (after calling onError) when a step throws.
 *
 * Backpressure: audio input is never dropped by the driver. A step skips its decode (its output
 * is silence, its text still goes out) while `pressure` is true (set by the owner, e.g. when the
 * packet channel to the page is over its budget) or while the input backlog says the loop is
 * behind real time (`CatchUpOptions.skipDecodeBacklog`).
 */
export class EngineDriver extends FrameLoop {
  private catchingUp = false;
  /** Output frames the sink refused (counted as overruns). */
  sinkDrops = 0;
  /** Set by the owner while the consumer of the output cannot keep up (skips decodes). */
  pressure = false;

  constructor(
    readonly engine: Engine,
    readonly source: FrameSource,
    readonly sink: FrameSink,
    private readonly callbacks: DriverCallbacks = {},
    /** Longest wait for input before checking `stop()` again, ms. */
    private readonly pollMs = 10,
    private readonly catchUp: CatchUpOptions = {},
  ) {
    super();
  }

  /** Whether the next step skips its decode (pressure, or behind real time). Updates the lag state. */
  private shouldSkipDecode(): boolean {
    const limit = this.catchUp.skipDecodeBacklog;
    if (limit !== undefined) {
      const backlog = this.source.queued();
      if (backlog >= limit) this.catchingUp = true;
      else if (backlog < FRAME_SAMPLES) this.catchingUp = false;
    }
    return this.pressure || this.catchingUp;
  }

  async run(): Promise<void> {
    await this.runOnce('EngineDriver', this.callbacks.onError, async () => {
      while (await nextFrame(this.source, this.frame, this.pollMs, () => this.stopRequested, () => this.callbacks.onIdle?.())) {
        const stamp = this.source.stamp?.() ?? null;
        const r = await this.engine.step(this.frame, { skipDecode: this.shouldSkipDecode(), stamp });
        if (!this.sink.push(r.pcm, r.stamp)) this.sinkDrops++;
        this.engine.metrics.setTransport({ inputQueueSamples: this.source.queued(), outputQueueSamples: this.sink.queued() });
        this.callbacks.onStep?.(r, this.frame);
      }
    });
  }
}
