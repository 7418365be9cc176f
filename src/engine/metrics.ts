/**
 * Per-step metrics of the 80 ms loop: stage times (encode / LM / decode / total, milliseconds of
 * wall clock on the host running the engine), steps over the real-time budget, queue depths,
 * underruns / overruns of the audio rings and dropped packets by type. Pure bookkeeping: no GPU,
 * no DOM, usable in the engine Worker, the Node CLI and the tests.
 */

/** Samples per engine step: one Mimi frame at 24 kHz (80 ms). */
export const FRAME_SAMPLES = 1920;
/** Engine sample rate in Hz. */
export const SAMPLE_RATE = 24000;
/** Real-time budget of one step in milliseconds (1920 / 24000 s). */
export const STEP_BUDGET_MS = (FRAME_SAMPLES / SAMPLE_RATE) * 1000;

/** Wall-clock time of one step's stages, in milliseconds. */
export interface StepTimings {
  encodeMs: number;
  lmMs: number;
  decodeMs: number;
  totalMs: number;
}

/** Percentiles of one quantity over the kept window of steps (milliseconds). */
export interface Percentiles {
  p50: number;
  p95: number;
  max: number;
  mean: number;
}

/** Audio-side and transport-side counters that the engine does not measure itself. */
export interface TransportCounters {
  /** Samples waiting in the input ring (captured, not yet consumed by the engine). */
  inputQueueSamples: number;
  /** Samples waiting in the output ring (produced, not yet played). */
  outputQueueSamples: number;
  /** Playback quanta that found too little audio in the output ring. */
  underruns: number;
  /** Capture quanta dropped because the input ring was full, plus engine frames dropped because the output ring was full. */
  overruns: number;
  /** Dropped packets per packet type name (e.g. AUDIO_CHUNK, TEXT_PARTIAL). */
  droppedPackets: Record<string, number>;
  /** Malformed or out-of-order packets seen by the channel. */
  protocolErrors: number;
}

/** Finiteness faults found by the engine's per-step checks (Engine.step), totals since reset. */
export interface NonFiniteCounters {
  /** Steps whose input frame held NaN, infinite or out-of-range samples (zeroed). */
  inputFrames: number;
  /** Such input samples in all. */
  inputSamples: number;
  /** Steps whose text logits held NaN or infinite values. */
  textLogitSteps: number;
  /** Steps whose audio (depformer) logits held NaN or infinite values. */
  audioLogitSteps: number;
  /** Decoded frames that held NaN, infinite or out-of-range samples (replaced by silence). */
  outputFrames: number;
  /** Such output samples in all. */
  outputSamples: number;
}

const noFaults = (): NonFiniteCounters => ({ inputFrames: 0, inputSamples: 0, textLogitSteps: 0, audioLogitSteps: 0, outputFrames: 0, outputSamples: 0 });

/** A snapshot of the loop's metrics, cheap to structured-clone. */
export interface MetricsSnapshot extends TransportCounters {
  /** Steps completed since the last reset. */
  steps: number;
  /** Steps where the LM returned tokens (audio was decoded). */
  tokenSteps: number;
  /** Steps whose total time exceeded the 80 ms budget. */
  overBudget: number;
  /** Steps whose audio tokens were not decoded (backpressure: the loop was behind or the page's queue full). */
  skippedDecodes: number;
  /** The budget in ms (80). */
  budgetMs: number;
  /** The most recent step's timings, or null before the first step. */
  last: StepTimings | null;
  encodeMs: Percentiles;
  lmMs: Percentiles;
  decodeMs: Percentiles;
  stepMs: Percentiles;
  /** Non-padding text tokens emitted so far. */
  textTokens: number;
  /** Non-finite input, logits and output found so far (Engine.step's checks). */
  nonFinite: NonFiniteCounters;
  /** Bytes of GPU memory the engine's device holds (GpuContext.liveBytes), where the host reports it. */
  gpuBytes?: number;
  /**
   * Pipeline latency, milliseconds: for each reply frame played, the time its first sample
   * started to play minus the capture time of the first sample of the input frame it answers
   * (both on the AudioContext clock, src/audio/frame_stamps.ts), over the kept window. It holds
   * the 80 ms the input frame takes to fill, the wait for the engine, the step, the output ring and
   * the jitter buffer; not the device's own input/output latency, and not the model's delay
   * (`modelDelayMs`). Filled on the page from the playback worklet's reports
   * (src/ui/engine_client.ts); absent where nothing plays (the CLI, the Worker's own snapshot).
   */
  latencyMs?: LatencySummary;
  /**
   * Share of the playback time since it first started that was silence because the output ring
   * ran dry (STAT.PLAY_STARVED_SAMPLES / PLAY_ACTIVE_SAMPLES × 100). Filled on the page.
   */
  underrunPercent?: number;
  /**
   * The model's inherent delay, milliseconds: the LM config's largest codebook delay × 80 ms (the
   * reply audio of step t belongs to frame t − max(delays)). Separate from `latencyMs`.
   */
  modelDelayMs?: number;
}

/** Percentiles of the pipeline latency (ms) and how many reply frames they cover. */
export interface LatencySummary extends Percentiles {
  count: number;
}

/** Pipeline latencies (ms) in a window of the last `capacity` reply frames (default 4096, 5.5 minutes). */
export class LatencyWindow {
  private readonly values: Float64Array;
  private next = 0;
  private filled = 0;
  /** Reports added since construction or `reset()`. */
  count = 0;
  constructor(readonly capacity = 4096) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`LatencyWindow capacity must be a positive integer, got ${capacity}`);
    this.values = new Float64Array(capacity);
  }
  /** Adds one reply frame's latency in ms. @throws RangeError for a non-finite value */
  add(ms: number): void {
    if (!Number.isFinite(ms)) throw new RangeError(`LatencyWindow.add: latency must be finite, got ${ms}`);
    this.values[this.next] = ms;
    this.next = (this.next + 1) % this.capacity;
    this.filled = Math.min(this.filled + 1, this.capacity);
    this.count++;
  }
  /** Percentiles over the window and the total count (zeros before the first report). */
  summary(): LatencySummary {
    return { ...percentiles(this.values.subarray(0, this.filled)), count: this.count };
  }
  reset(): void {
    this.next = 0;
    this.filled = 0;
    this.count = 0;
  }
}

const EMPTY: Percentiles = { p50: 0, p95: 0, max: 0, mean: 0 };

/** Percentiles (nearest-rank) of `values`; zeros for an empty list. */
export function percentiles(values: ArrayLike<number>): Percentiles {
  const n = values.length;
  if (n === 0) return { ...EMPTY };
  const sorted = Float64Array.from(values).sort();
  const rank = (p: number) => sorted[Math.min(n - 1, Math.max(0, Math.ceil(p * n) - 1))];
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i];
  return { p50: rank(0.5), p95: rank(0.95), max: sorted[n - 1], mean: sum / n };
}

/**
 * Accumulates step timings in a fixed-size window (default the last 4096 steps, 5.5 minutes)
 * for percentiles, plus totals since `reset()`. Transport counters are set from outside
 * (`setTransport`) by whoever owns the rings and the packet channel.
 */
export class LoopMetrics {
  private readonly window: Float64Array[];
  private next = 0;
  private filled = 0;
  steps = 0;
  tokenSteps = 0;
  overBudget = 0;
  skippedDecodes = 0;
  textTokens = 0;
  last: StepTimings | null = null;
  nonFinite: NonFiniteCounters = noFaults();
  private transport: TransportCounters = { inputQueueSamples: 0, outputQueueSamples: 0, underruns: 0, overruns: 0, droppedPackets: {}, protocolErrors: 0 };

  constructor(readonly capacity = 4096, readonly budgetMs = STEP_BUDGET_MS) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`LoopMetrics capacity must be a positive integer, got ${capacity}`);
    this.window = [0, 1, 2, 3].map(() => new Float64Array(capacity));
  }

  /**
   * Records one step. `tokens`: the LM returned tokens; `textTokens`: text tokens emitted by it
   * (0 or 1); `decodeSkipped`: its audio tokens were not decoded (backpressure).
   */
  record(t: StepTimings, tokens: boolean, textTokens: number, decodeSkipped = false): void {
    const i = this.next;
    this.window[0][i] = t.encodeMs;
    this.window[1][i] = t.lmMs;
    this.window[2][i] = t.decodeMs;
    this.window[3][i] = t.totalMs;
    this.next = (i + 1) % this.capacity;
    this.filled = Math.min(this.filled + 1, this.capacity);
    this.steps++;
    if (tokens) this.tokenSteps++;
    if (t.totalMs > this.budgetMs) this.overBudget++;
    if (decodeSkipped) this.skippedDecodes++;
    this.textTokens += textTokens;
    this.last = { ...t };
  }

  /** Counts one fault of a step's finiteness checks (`samples`: bad samples, for input and output). */
  recordFault(kind: 'input' | 'text_logits' | 'audio_logits' | 'output', samples = 0): void {
    const c = this.nonFinite;
    if (kind === 'input') {
      c.inputFrames++;
      c.inputSamples += samples;
    } else if (kind === 'output') {
      c.outputFrames++;
      c.outputSamples += samples;
    } else if (kind === 'text_logits') c.textLogitSteps++;
    else c.audioLogitSteps++;
  }

  /** Replaces the transport-side counters (queue depths, underruns, drops). */
  setTransport(c: Partial<TransportCounters>): void {
    this.transport = { ...this.transport, ...c, droppedPackets: { ...(c.droppedPackets ?? this.transport.droppedPackets) } };
  }

  snapshot(): MetricsSnapshot {
    const col = (k: number) => this.window[k].subarray(0, this.filled);
    return {
      ...this.transport,
      droppedPackets: { ...this.transport.droppedPackets },
      steps: this.steps,
      tokenSteps: this.tokenSteps,
      overBudget: this.overBudget,
      skippedDecodes: this.skippedDecodes,
      budgetMs: this.budgetMs,
      last: this.last ? { ...this.last } : null,
      encodeMs: percentiles(col(0)),
      lmMs: percentiles(col(1)),
      decodeMs: percentiles(col(2)),
      stepMs: percentiles(col(3)),
      textTokens: this.textTokens,
      nonFinite: { ...this.nonFinite },
    };
  }

  reset(): void {
    this.next = 0;
    this.filled = 0;
    this.steps = 0;
    this.tokenSteps = 0;
    this.overBudget = 0;
    this.skippedDecodes = 0;
    this.textTokens = 0;
    this.nonFinite = noFaults();
    this.last = null;
    this.transport = { inputQueueSamples: 0, outputQueueSamples: 0, underruns: 0, overruns: 0, droppedPackets: {}, protocolErrors: 0 };
  }
}
