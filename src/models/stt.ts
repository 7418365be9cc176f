/**
 * Kyutai speech-to-text: the transcription procedure of moshi/run_inference.py
 * `InferenceState.run` for `model_type == "stt"` (kyutai/stt-1b-en_fr, kyutai/stt-2.6b-en: an
 * LMModel with dep_q = 0 that reads the Mimi codes of the speech and writes one text token per
 * 80 ms frame), on this engine's MimiModel and LMGen.
 *
 *   1. pad the 24 kHz input: `audio_silence_prefix_seconds` of zeros on the left,
 *      `audio_delay_seconds + 1` s on the right (int(seconds · 24000) samples each), keep only
 *      whole 1920-sample frames;
 *   2. one streaming Mimi encodes each frame ([n_q] codes per frame, the Mimi set to ≥ n_q codebooks);
 *   3. the first frame's codes go to LMGen twice and the first result is dropped (so the first frame
 *      is really seen by the transformer rather than replaced by the initial tokens); every later
 *      frame: one step; a step that returns nothing (delays filling) is skipped;
 *   4. each returned step's text token is the transcript token: ids 0 (end of padding) and 3
 *      (padding) print nothing, the others their SentencePiece piece with `▁` → space.
 *
 * Word timing (not part of run_inference.py, which only prints): a token returned for frame t
 * stands at `t − max_delay + delays[0]` (the frame its step saw; t itself with the STT models' zero
 * delays) and its time is that frame × 80 ms − audio_silence_prefix_seconds − audio_delay_seconds
 * (the text lags the audio by audio_delay_seconds), clamped at 0, as the official
 * delayed-streams-modeling `stt_from_file_pytorch.py` offsets its timestamps.
 */
import type { TextTokenizer } from '../text/tokenizer.ts';
import { SPM_SPACE } from '../text/tokenizer.ts';
import type { LMGen } from './lm_gen.ts';
import type { SttConfig } from './lm_config.ts';
import { maxDelay } from './lm_config.ts';
import type { MimiModel } from './mimi.ts';

/** A model, audio or option that the transcription procedure cannot use; the message says which and why. */
export class SttError extends Error {
  override name = 'SttError';
}

/** The STT defaults of run_inference.py when a config has no stt_config: `stt_config.get(key, 0.0)`. */
export const STT_CONFIG_DEFAULTS: SttConfig = Object.freeze({ audioDelaySeconds: 0, audioSilencePrefixSeconds: 0 });

/** Samples of zeros run_inference.py adds: left int(prefix · rate), right int((delay + 1) · rate). */
export function sttPadding(stt: SttConfig, sampleRate: number): { left: number; right: number } {
  return { left: Math.trunc(stt.audioSilencePrefixSeconds * sampleRate), right: Math.trunc((stt.audioDelaySeconds + 1) * sampleRate) };
}

/**
 * The padded input of the procedure (steps 1): `pcm` (f32, `sampleRate` Hz, mono) with
 * sttPadding's zeros around it, cut to whole frames of `frameSize` samples.
 * @returns f32 [frames · frameSize] and the frame count
 */
export function padForStt(pcm: Float32Array, stt: SttConfig, sampleRate: number, frameSize: number): { padded: Float32Array; frames: number } {
  const { left, right } = sttPadding(stt, sampleRate);
  const frames = Math.floor((left + pcm.length + right) / frameSize);
  const padded = new Float32Array(frames * frameSize);
  const kept = Math.min(pcm.length, frames * frameSize - left);
  if (kept > 0) padded.set(pcm.subarray(0, kept), left);
  return { padded, frames };
}

/**
 * Frames the procedure makes of `samples` input samples: floor((left + samples + right) / frameSize)
 * with sttPadding's zeros (what padForStt yields, without building the array).
 */
export function sttFrameCount(samples: number, stt: SttConfig, sampleRate: number, frameSize: number): number {
  const { left, right } = sttPadding(stt, sampleRate);
  return Math.floor((left + samples + right) / frameSize);
}

/** Options of {@link SttStream} (and {@link transcribe}). */
export interface SttStreamOptions {
  /** Padding and text delay (default: the LM config's stt_config, else STT_CONFIG_DEFAULTS). */
  stt?: SttConfig;
  /** Compute the extra heads of each step (LMGen.stepWithExtraHeads; default: when the model has any). */
  extraHeads?: boolean;
}

/** One counted step of the procedure: what the STT model wrote for one input frame. */
export interface SttStep {
  /** Index of this counted step (0, 1, …; the dropped first step is not counted). */
  step: number;
  /** Padded input frame (0-based, silence prefix included) whose LMGen step returned this token. */
  inputFrame: number;
  /** Frame the token stands at: inputFrame − (max_delay − delays[0]) (module doc). */
  frame: number;
  /** Text token id (0 / existing_text_padding_id print nothing). */
  token: number;
  /** Seconds from the start of the (unpadded) input: frame × frameSeconds − offsetSeconds, clamped at 0. */
  time: number;
  /** Extra-head probabilities, f32 [H · Dh] (head-major; empty without extra heads). */
  extraHeads: Float32Array;
  /** The step's text logits or extra-head probabilities held NaN or infinite values: `token` is not trustworthy. */
  nonFinite: boolean;
}

/** The Mimi properties the procedure needs (MimiModel provides them). */
export interface SttMimi {
  readonly numCodebooks: number;
  readonly frameSize: number;
  readonly config: { readonly sample_rate: number; readonly quantizer: { readonly n_q: number } };
}

/**
 * The bookkeeping of the STT procedure (module doc, steps 3 and 4) apart from where the codes and
 * the LMGen steps are computed: how many LMGen steps an input frame takes (2 for the first, whose
 * first result is dropped, then 1), and the counted step (token, frame, time, extra heads) a
 * frame's result makes. Shared by {@link SttStream} (host arrays) and the Moshi engine's STT step
 * (src/engine/engine.ts: one Mimi encode for both LMs), so both follow one implementation.
 */
export class SttProcedure {
  readonly stt: SttConfig;
  /** Samples per frame (Mimi: 1920) and the sample rate (24000). */
  readonly frameSize: number;
  readonly sampleRate: number;
  /** Codebooks the LM reads (n_q) of the Mimi's numCodebooks. */
  readonly nQ: number;
  /** Extra heads H and outputs per head Dh of each step's `extraHeads` (0 and 0 without them). */
  readonly numHeads: number;
  readonly headDim: number;
  /** Seconds per frame (0.08) and the offset subtracted from frame times (prefix + delay). */
  readonly frameSeconds: number;
  readonly offsetSeconds: number;
  /** Input frames a counted step lags behind (max_delay − delays[0]; 0 for the STT models). */
  readonly shift: number;
  /** Whether each step computes the extra heads (LMGen.step_with_extra_heads). */
  readonly extra: boolean;
  /** The dropped first step's text token (null before the first frame, or when it returned nothing). */
  droppedFirst: number | null = null;
  private inputFrames = 0;
  private steps = 0;

  /**
   * @throws SttError for a model with a depformer (dep_q > 0: not an STT model), a Mimi with fewer
   *   codebooks than the LM's n_q, extra heads asked of a model without them, or a bad stt_config
   */
  constructor(gen: Pick<LMGen, 'lm'>, mimi: SttMimi, opts: SttStreamOptions = {}) {
    const cfg = gen.lm.cfg;
    if (cfg.depQ > 0) throw new SttError(`the LM has dep_q = ${cfg.depQ} (a depformer that generates audio): not a speech-to-text model (STT models have dep_q = 0)`);
    this.nQ = cfg.nQ;
    if (mimi.numCodebooks < this.nQ) throw new SttError(`the Mimi emits ${mimi.numCodebooks} codebooks, the STT model reads n_q = ${this.nQ}: load the Mimi with num_codebooks = ${this.nQ} (its quantizer has ${mimi.config.quantizer.n_q})`);
    this.stt = opts.stt ?? cfg.stt ?? STT_CONFIG_DEFAULTS;
    for (const [k, v] of [['audio_delay_seconds', this.stt.audioDelaySeconds], ['audio_silence_prefix_seconds', this.stt.audioSilencePrefixSeconds]] as const) {
      if (!Number.isFinite(v) || v < 0) throw new SttError(`stt_config ${k} must be a finite number of seconds >= 0, got ${v}`);
    }
    this.sampleRate = mimi.config.sample_rate;
    this.frameSize = mimi.frameSize;
    this.extra = opts.extraHeads ?? gen.lm.numExtraHeads > 0;
    if (this.extra && gen.lm.numExtraHeads === 0) throw new SttError('extra heads were asked for, but the model has none (extra_heads_num_heads = 0)');
    this.numHeads = this.extra ? gen.lm.numExtraHeads : 0;
    this.headDim = this.extra ? cfg.extraHeadsDim : 0;
    this.frameSeconds = this.frameSize / this.sampleRate;
    this.offsetSeconds = this.stt.audioSilencePrefixSeconds + this.stt.audioDelaySeconds;
    this.shift = maxDelay(cfg) - cfg.delays[0];
  }

  /** Padded input frames booked so far. */
  get framesIn(): number {
    return this.inputFrames;
  }

  /** Counted steps made so far. */
  get stepsOut(): number {
    return this.steps;
  }

  /** LMGen steps the next input frame takes: 2 for the first frame (the first result is dropped), else 1. */
  get lmStepsForNextFrame(): 1 | 2 {
    return this.inputFrames === 0 ? 2 : 1;
  }

  /**
   * Books one input frame. `dropped`: the first frame's extra, dropped step (its text, or null when it
   * returned nothing; ignored for later frames); `r`: the frame's counted LMGen step (null while the
   * delays fill) with its extra-head probabilities (one f32 [Dh] per head, or null without them) and
   * whether its text logits held NaN / infinite values (`nonFinite`; non-finite probabilities are found here).
   * @returns the counted step, or null
   */
  bookFrame(dropped: { text: number } | null, r: { text: number; extraHeads: Float32Array[] | null; nonFinite?: boolean } | null): SttStep | null {
    const t = this.inputFrames++;
    if (t === 0) this.droppedFirst = dropped ? dropped.text : null;
    if (!r) return null;
    const heads = new Float32Array(this.numHeads * this.headDim);
    r.extraHeads?.forEach((p, h) => heads.set(p, h * this.headDim));
    const frameAt = t - this.shift;
    const nonFinite = r.nonFinite === true || heads.some((v) => !Number.isFinite(v));
    return { step: this.steps++, inputFrame: t, frame: frameAt, token: r.text, time: Math.max(0, frameAt * this.frameSeconds - this.offsetSeconds), extraHeads: heads, nonFinite };
  }

  /** Starts over (a new transcription). */
  reset(): void {
    this.inputFrames = 0;
    this.steps = 0;
    this.droppedFirst = null;
  }
}

/**
 * The STT procedure (module doc, moshi/run_inference.py `InferenceState.run` for model_type "stt")
 * as a stream, for a live microphone: `push()` takes 24 kHz mono f32 samples in any amounts (one
 * 1920-sample frame at a time from a microphone), prepends `audio_silence_prefix_seconds` of zeros
 * before the first sample, encodes each whole 1920-sample frame with the streaming Mimi, gives the
 * first frame's codes to LMGen twice (the first result dropped) and every later frame's once, and
 * returns the counted steps (text token + extra-head probabilities) of the frames it completed.
 * The text lags the audio by `audio_delay_seconds` (the model's training delay): the token of a
 * word comes that long after the word was heard, so `flush()` on Stop feeds the right padding,
 * `audio_delay_seconds + 1` s of zeros (int((delay + 1) · 24000) samples, whole frames only, the
 * remainder dropped as run_inference.py drops it), which brings out the last words.
 *
 * `push(pcm)` followed by `flush()` yields exactly what `transcribe(pcm)` does, whatever the chunk
 * sizes. The stream owns the streaming state of `mimi` and `gen` (one stream per model pair at a
 * time): construction and `reset()` reset both (a fresh `mimi.streaming(1)` / `lm_gen.streaming(1)`).
 * Greedy sampling (the STT configs' lm_gen_config, temp 0) is the caller's choice of `gen`.
 * The frame bookkeeping is {@link SttProcedure}'s.
 */
export class SttStream {
  /**
   * Called after every padded input frame (silence included) with its index, its Mimi codes i32
   * [n_q] (the model's input) and the counted step it produced (null while the delays fill).
   */
  onFrame: ((inputFrame: number, codes: Int32Array, step: SttStep | null) => void) | null = null;
  /** Wall-clock milliseconds of the last frame: Mimi encode and the LMGen step(s) (performance.now()). */
  readonly lastTimings = { encodeMs: 0, lmMs: 0 };
  /** The frame bookkeeping, and the stream's constants: stt config, frameSize, sampleRate, nQ, numHeads × headDim, frameSeconds, offsetSeconds, shift. */
  readonly procedure: SttProcedure;
  private readonly extra: boolean;
  private readonly pending: Float32Array;
  private pendingLen = 0;
  private started = false;
  private flushed = false;

  /**
   * @throws SttError for a model with a depformer (dep_q > 0: not an STT model) or a Mimi with fewer
   *   codebooks than the LM's n_q
   */
  constructor(readonly mimi: MimiModel, readonly gen: LMGen, opts: SttStreamOptions = {}) {
    const p = new SttProcedure(gen, mimi, opts);
    this.procedure = p;
    this.extra = p.extra;
    this.pending = new Float32Array(this.procedure.frameSize);
    this.reset();
  }

  /** The dropped first step's text token (null before the first frame, or when it returned nothing). */
  get droppedFirst(): number | null {
    return this.procedure.droppedFirst;
  }

  /** Padded input frames encoded so far. */
  get framesIn(): number {
    return this.procedure.framesIn;
  }

  /** Counted steps returned so far. */
  get stepsOut(): number {
    return this.procedure.stepsOut;
  }

  /** True after `flush()` (until `reset()`). */
  get ended(): boolean {
    return this.flushed;
  }

  /** Starts a new transcription: both models' streaming state and the counters. */
  reset(): void {
    this.mimi.reset();
    this.gen.reset();
    this.pendingLen = 0;
    this.procedure.reset();
    this.started = false;
    this.flushed = false;
  }

  /**
   * Feeds input samples (f32, 24 kHz mono, any length ≥ 0; a live microphone gives one
   * 1920-sample frame at a time) and runs every frame they complete.
   * @returns the counted steps of those frames, in order (none while a frame is incomplete)
   * @throws SttError after `flush()` (reset() first), or for a non-finite sample (naming its index)
   */
  async push(pcm: Float32Array): Promise<SttStep[]> {
    if (this.flushed) throw new SttError('SttStream.push after flush(): the transcription has ended; reset() to start a new one');
    for (let i = 0; i < pcm.length; i++) {
      if (!Number.isFinite(pcm[i])) throw new SttError(`SttStream.push: sample ${i} of ${pcm.length} is ${pcm[i]} (the Mimi needs finite samples)`);
    }
    const out: SttStep[] = [];
    if (!this.started) {
      this.started = true;
      await this.feedZeros(sttPadding(this.procedure.stt, this.procedure.sampleRate).left, out);
    }
    await this.feed(pcm, out);
    return out;
  }

  /**
   * Ends the input: feeds the right padding (audio_delay_seconds + 1 s of zeros) and runs its whole
   * frames (a leftover partial frame is dropped). Returns the counted steps that brings out: the
   * last words. Afterwards the stream is ended until `reset()`.
   * @throws SttError when called twice, or when the input and padding made no whole frame at all
   */
  async flush(): Promise<SttStep[]> {
    if (this.flushed) throw new SttError('SttStream.flush called twice: the transcription has already ended; reset() to start a new one');
    const out: SttStep[] = [];
    if (!this.started) {
      this.started = true;
      await this.feedZeros(sttPadding(this.procedure.stt, this.procedure.sampleRate).left, out);
    }
    await this.feedZeros(sttPadding(this.procedure.stt, this.procedure.sampleRate).right, out);
    this.flushed = true;
    this.pendingLen = 0;
    if (this.procedure.framesIn === 0) throw new SttError(`the input and ${this.procedure.stt.audioSilencePrefixSeconds} s + ${this.procedure.stt.audioDelaySeconds + 1} s of padding make no whole ${this.procedure.frameSize}-sample frame`);
    return out;
  }

  private async feedZeros(n: number, out: SttStep[]): Promise<void> {
    const z = new Float32Array(Math.min(n, this.procedure.frameSize));
    for (let left = n; left > 0; left -= z.length) await this.feed(z.subarray(0, Math.min(left, z.length)), out);
  }

  private async feed(pcm: Float32Array, out: SttStep[]): Promise<void> {
    const fs = this.procedure.frameSize;
    let i = 0;
    while (i < pcm.length) {
      const take = Math.min(fs - this.pendingLen, pcm.length - i);
      this.pending.set(pcm.subarray(i, i + take), this.pendingLen);
      this.pendingLen += take;
      i += take;
      if (this.pendingLen === fs) {
        this.pendingLen = 0;
        const s = await this.runFrame(this.pending);
        if (s) out.push(s);
      }
    }
  }

  /** One padded frame: Mimi encode, LMGen step(s); the counted step, or null while the delays fill. */
  private async runFrame(frame: Float32Array): Promise<SttStep | null> {
    const t = this.procedure.framesIn;
    const t0 = performance.now();
    const c = await this.mimi.encode(frame); // [K, 1]
    const t1 = performance.now();
    this.lastTimings.encodeMs = t1 - t0;
    if (c.length !== this.mimi.numCodebooks) throw new Error(`MimiModel.encode returned ${c.length} codes for one frame, expected ${this.mimi.numCodebooks}`);
    const codes = c.subarray(0, this.procedure.nQ);
    const dropped = this.procedure.lmStepsForNextFrame === 2 ? await this.lmStep(codes) : null;
    const r = await this.lmStep(codes);
    this.lastTimings.lmMs = performance.now() - t1;
    const step = this.procedure.bookFrame(dropped, r);
    this.onFrame?.(t, codes, step);
    return step;
  }

  private async lmStep(codes: Int32Array): Promise<{ text: number; extraHeads: Float32Array[] | null; nonFinite: boolean } | null> {
    const r: { text: number; extraHeads?: Float32Array[] } | null = this.extra ? await this.gen.stepWithExtraHeads(codes) : await this.gen.step(codes);
    return r && { text: r.text, extraHeads: r.extraHeads ?? null, nonFinite: this.gen.lastStepChecks.textLogits };
  }
}

/** Options of {@link transcribe}. */
export interface TranscribeOptions extends SttStreamOptions {
  /** Called after every input frame: frame index, frames in all, the text token returned for it (null: none). */
  onFrame?: (frame: number, frames: number, text: number | null) => void;
}

/** What {@link transcribe} computed. */
export interface Transcription {
  /** Padded input frames encoded (F_in). */
  inputFrames: number;
  /** Mimi codes of every padded frame, i32 [F_in, n_q] row-major (frame-major): the model's input. */
  codes: Int32Array;
  /** Text tokens of the counted steps, i32 [F] (F = F_in − max_delay): the transcript. */
  tokens: Int32Array;
  /** Frame each token stands at (see the module doc), [F]. */
  tokenFrames: Int32Array;
  /** Extra-head probabilities of each counted step, f32 [F, H, Dh] (H = 0 without extra heads). */
  extraHeads: Float32Array;
  /** Heads H and outputs per head Dh of `extraHeads`. */
  numHeads: number;
  headDim: number;
  /** The dropped first step's text token (null when it returned nothing, i.e. max_delay > 0). */
  droppedFirst: number | null;
  /** Seconds per frame (1920 / 24000 = 0.08) and the time offset subtracted from frame times (prefix + delay). */
  frameSeconds: number;
  offsetSeconds: number;
  /** Counted steps whose text logits or extra-head probabilities held NaN or infinite values (SttStep.nonFinite): their tokens are not trustworthy. */
  nonFiniteSteps: number[];
}

/**
 * Runs the official STT transcription procedure (module doc) over `pcm` (f32 mono at the Mimi's
 * sample rate, 24 kHz; any length ≥ 0: the padding makes at least one frame when delay + 1 s ≥ 80 ms)
 * through one {@link SttStream} (`push(pcm)`, then `flush()`): the batch and the live transcriber
 * are one implementation. `gen` must drive an LM with dep_q = 0 and n_q ≤ `mimi.numCodebooks`; its
 * sampling is what the caller chose (the official STT configs' lm_gen_config is greedy: temp 0).
 * Resets both models' streaming state first (a fresh `mimi.streaming(1)` / `lm_gen.streaming(1)`).
 * @throws SttError for a model with a depformer (dep_q > 0: not an STT model), a Mimi with fewer
 *   codebooks than the LM's n_q, or an input that pads to no whole frame
 */
export async function transcribe(mimi: MimiModel, gen: LMGen, pcm: Float32Array, opts: TranscribeOptions = {}): Promise<Transcription> {
  const stream = new SttStream(mimi, gen, opts);
  const p = stream.procedure;
  const frames = sttFrameCount(pcm.length, p.stt, p.sampleRate, p.frameSize);
  if (frames < 1) throw new SttError(`${pcm.length} samples with ${p.stt.audioSilencePrefixSeconds} s + ${p.stt.audioDelaySeconds + 1} s of padding make no whole ${p.frameSize}-sample frame`);
  const nQ = p.nQ;
  const codes = new Int32Array(frames * nQ);
  stream.onFrame = (t, c, step) => {
    codes.set(c, t * nQ);
    opts.onFrame?.(t, frames, step ? step.token : null);
  };
  const steps = (await stream.push(pcm)).concat(await stream.flush()); // (no spread: hours of audio are many steps)
  if (stream.framesIn !== frames) throw new Error(`SttStream ran ${stream.framesIn} frames, the padding makes ${frames}`);
  const H = p.numHeads;
  const Dh = p.headDim;
  const extraHeads = new Float32Array(steps.length * H * Dh);
  steps.forEach((s, i) => extraHeads.set(s.extraHeads, i * H * Dh));
  return {
    inputFrames: frames,
    codes,
    tokens: Int32Array.from(steps, (s) => s.token),
    tokenFrames: Int32Array.from(steps, (s) => s.frame),
    extraHeads,
    numHeads: H,
    headDim: Dh,
    droppedFirst: stream.droppedFirst,
    frameSeconds: p.frameSeconds,
    offsetSeconds: p.offsetSeconds,
    nonFiniteSteps: steps.filter((s) => s.nonFinite).map((s) => s.step),
  };
}

/** One word of a transcript with its times in seconds from the start of the input audio. */
export interface TimedWord {
  text: string;
  /** Seconds, >= 0. */
  start: number;
  /** Seconds, >= start. */
  end: number;
}

/**
 * Groups the transcript tokens into words with times (module doc): a word starts at a printed
 * piece that begins with `▁` (or at the first printed piece) and takes the following pieces
 * without `▁`; it starts at its first piece's frame time and ends at the frame time of the first
 * later token that is the end-of-padding id (`existing_text_end_padding_id`, 0: Kyutai's STT
 * models emit it just before the next word) or a new word's piece, else at the end of the
 * transcript (last frame + 1). Times are frame × frameSeconds − offsetSeconds, clamped at 0.
 * Skipped ids (tokenizer.skipIds: 0 and 3) print nothing. Words whose text is only spaces are dropped.
 * @throws TokenizerError for a token outside the tokenizer's vocabulary
 */
export function timedWords(t: Pick<Transcription, 'tokens' | 'tokenFrames' | 'frameSeconds' | 'offsetSeconds'>, tokenizer: Pick<TextTokenizer, 'decodePiece' | 'piece'>, endOfPaddingId = 0): TimedWord[] {
  const time = (frame: number) => Math.max(0, frame * t.frameSeconds - t.offsetSeconds);
  const words: TimedWord[] = [];
  let cur: { text: string; startFrame: number } | null = null;
  const close = (endFrame: number) => {
    if (cur && cur.text.trim()) words.push({ text: cur.text.trim(), start: time(cur.startFrame), end: Math.max(time(cur.startFrame), time(endFrame)) });
    cur = null;
  };
  const n = t.tokens.length;
  for (let i = 0; i < n; i++) {
    const id = t.tokens[i];
    const frame = t.tokenFrames[i];
    const piece = tokenizer.decodePiece(id);
    if (piece === null) {
      if (id === endOfPaddingId) close(frame);
      continue;
    }
    if (!cur || tokenizer.piece(id).startsWith(SPM_SPACE)) {
      close(frame);
      cur = { text: piece, startFrame: frame };
    } else cur.text += piece;
  }
  close(n ? t.tokenFrames[n - 1] + 1 : 0);
  return words;
}
