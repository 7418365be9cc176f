/**
 * The 80 ms loop of SolaceLive, shared by the browser engine Worker and the Node CLI.
 *
 * One step takes exactly 1920 samples at 24 kHz and returns 1920 samples:
 *   Mimi encode (one code frame) -> LMGen step -> Mimi decode of the returned audio tokens,
 * or 1920 zeros while LMGen returns null (its first `max_delay` steps). The text token of a
 * returned frame leaves as text: the SentencePiece piece (U+2581 -> space) when a tokenizer is
 * loaded, `[id]` otherwise; padding ids (0 and the config's existing_text_padding_id, 3 in the
 * released models) produce no text, exactly like the official server.
 *
 * Port of moshi/moshi/server.py `ServerState.recv_loop` / `decode_and_send` (without Opus and
 * without the server's encoder reset after the first chunk: the plain streaming loop whose
 * goldens are `lm/loop_tokens` and `lm/loop_decoded_pcm`).
 *
 * GPU round trips per step follow the data dependencies: the codes must reach the host before
 * LMGen (which samples on the host), the LM's tokens before decode, the PCM at the end. Each
 * stage records its whole work into one Recorder and submits once.
 */
import { FRAME_SAMPLES, LoopMetrics, type StepTimings } from './metrics.ts';

/** The Mimi side of the loop, as `MimiModel` (src/models/mimi.ts) provides it. */
export interface LoopCodec {
  /** Encodes whole frames of 24 kHz mono PCM; returns codes [numCodebooks, frames] (row-major). */
  encode(pcm: Float32Array): Promise<Int32Array>;
  /** Decodes codes [numCodebooks, frames] (row-major) to frames*1920 PCM samples. */
  decode(codes: Int32Array, frames: number): Promise<Float32Array>;
  /** Clears the streaming state (conv carries, KV caches). */
  reset(): void;
}

/** One LMGen output frame: the text token and dep_q audio tokens. */
export interface LmFrame {
  text: number;
  audio: Int32Array;
}

/** The LM side of the loop, as `LMGen` (src/models/lm_gen.ts) provides it. */
export interface LoopLm {
  /** One step with the user's codes of one frame; null while the delayed outputs are not ready. */
  step(userCodes: Int32Array): Promise<LmFrame | null>;
  reset(): void;
}

/** Detokenizer (src/text/tokenizer.ts TextTokenizer). */
export interface LoopTokenizer {
  decodePiece(id: number): string;
}

/** What one engine step produced. */
export interface StepResult {
  /** 0-based index of the step since the last reset. */
  index: number;
  /** 1920 output samples at 24 kHz (zeros when `frame` is null). */
  pcm: Float32Array;
  /** The LM's tokens, or null while LMGen returns null. */
  frame: LmFrame | null;
  /** Text to show for this step, or null (no frame, or a padding token). */
  text: string | null;
  timings: StepTimings;
}

export class EngineError extends Error {
  override name = 'EngineError';
}

export interface EngineOptions {
  /** Text token ids that produce no text (official server: 0 and 3). */
  silentTextIds?: readonly number[];
  /** Expected number of user codebooks from encode (the LM's n_q - dep_q); checked per step when set. */
  userCodebooks?: number;
  /** Number of audio tokens per LM frame (dep_q); checked per step when set. */
  depQ?: number;
  /** Clock in ms (performance.now by default). */
  now?: () => number;
}

/**
 * The streaming engine: owns one Mimi (encoder and decoder states), one LMGen and optionally a
 * tokenizer. Not re-entrant: await each `step()` before the next (the driver does).
 */
export class Engine {
  readonly metrics = new LoopMetrics();
  tokenizer: LoopTokenizer | null;
  private stepIndex = 0;
  private busy = false;
  private readonly silent: Set<number>;
  private readonly now: () => number;
  private readonly zeros = new Float32Array(FRAME_SAMPLES);

  constructor(
    readonly codec: LoopCodec,
    readonly lm: LoopLm,
    tokenizer: LoopTokenizer | null = null,
    private readonly options: EngineOptions = {},
  ) {
    this.tokenizer = tokenizer;
    this.silent = new Set(options.silentTextIds ?? [0, 3]);
    this.now = options.now ?? (() => performance.now());
  }

  /** Steps done since the last reset. */
  get steps(): number {
    return this.stepIndex;
  }

  /**
   * Runs one 80 ms step. `pcm`: exactly 1920 float samples at 24 kHz in [-1, 1].
   * Throws EngineError on a wrong frame length or a concurrent call; model and GPU errors
   * (GpuDeviceLostError, ShapeError, ...) propagate unchanged.
   */
  async step(pcm: Float32Array): Promise<StepResult> {
    if (pcm.length !== FRAME_SAMPLES) {
      throw new EngineError(`Engine.step takes exactly ${FRAME_SAMPLES} samples (80 ms at 24 kHz), got ${pcm.length}`);
    }
    if (this.busy) throw new EngineError('Engine.step called while the previous step is still running; await each step');
    this.busy = true;
    try {
      const t0 = this.now();
      const codes = await this.codec.encode(pcm); // codes: [K, 1]
      const t1 = this.now();
      if (this.options.userCodebooks !== undefined && codes.length !== this.options.userCodebooks) {
        throw new EngineError(`Mimi encode returned ${codes.length} codes for one frame, the LM expects ${this.options.userCodebooks} user codebooks (n_q - dep_q): check that the Mimi and LM configs belong together`);
      }
      const frame = await this.lm.step(codes);
      const t2 = this.now();
      let out = this.zeros;
      let text: string | null = null;
      if (frame) {
        if (this.options.depQ !== undefined && frame.audio.length !== this.options.depQ) {
          throw new EngineError(`LMGen returned ${frame.audio.length} audio tokens, expected dep_q = ${this.options.depQ}`);
        }
        out = await this.codec.decode(frame.audio, 1); // out: [1920]
        if (out.length !== FRAME_SAMPLES) throw new EngineError(`Mimi decode of one frame returned ${out.length} samples, expected ${FRAME_SAMPLES}`);
        text = this.textOf(frame.text);
      } else {
        out = new Float32Array(FRAME_SAMPLES);
      }
      const t3 = this.now();
      const timings: StepTimings = { encodeMs: t1 - t0, lmMs: t2 - t1, decodeMs: frame ? t3 - t2 : 0, totalMs: t3 - t0 };
      this.metrics.record(timings, frame !== null, text === null ? 0 : 1);
      return { index: this.stepIndex++, pcm: out, frame, text, timings };
    } finally {
      this.busy = false;
    }
  }

  /** The text of a token: the tokenizer's piece (U+2581 as a space), `[id]` without one; null for padding ids. */
  textOf(id: number): string | null {
    if (this.silent.has(id)) return null;
    if (!this.tokenizer) return `[${id}]`;
    return this.tokenizer.decodePiece(id).replace(/\u2581/g, ' ');
  }

  /** Clears Mimi and LMGen streaming state and the metrics: the next step is step 0 of a new conversation. */
  reset(): void {
    this.codec.reset();
    this.lm.reset();
    this.metrics.reset();
    this.stepIndex = 0;
  }
}
