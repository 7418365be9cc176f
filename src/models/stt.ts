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

/** Options of {@link transcribe}. */
export interface TranscribeOptions {
  /** Padding and text delay (default: the LM config's stt_config, else STT_CONFIG_DEFAULTS). */
  stt?: SttConfig;
  /** Compute the extra heads of each step (LMGen.stepWithExtraHeads; default: when the model has any). */
  extraHeads?: boolean;
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
}

/**
 * Runs the official STT transcription procedure (module doc) over `pcm` (f32 mono at the Mimi's
 * sample rate, 24 kHz; any length ≥ 0: the padding makes at least one frame when delay + 1 s ≥ 80 ms).
 * `gen` must drive an LM with dep_q = 0 and n_q ≤ `mimi.numCodebooks`; its sampling is what the
 * caller chose (the official STT configs' lm_gen_config is greedy: temp 0). Resets both models'
 * streaming state first (a fresh `mimi.streaming(1)` / `lm_gen.streaming(1)`).
 * @throws SttError for a model with a depformer (dep_q > 0: not an STT model), a Mimi with fewer
 *   codebooks than the LM's n_q, or an input that pads to no whole frame
 */
export async function transcribe(mimi: MimiModel, gen: LMGen, pcm: Float32Array, opts: TranscribeOptions = {}): Promise<Transcription> {
  const cfg = gen.lm.cfg;
  if (cfg.depQ > 0) throw new SttError(`the LM has dep_q = ${cfg.depQ} (a depformer that generates audio): not a speech-to-text model (STT models have dep_q = 0)`);
  const nQ = cfg.nQ;
  if (mimi.numCodebooks < nQ) throw new SttError(`the Mimi emits ${mimi.numCodebooks} codebooks, the STT model reads n_q = ${nQ}: load the Mimi with num_codebooks = ${nQ} (its quantizer has ${mimi.config.quantizer.n_q})`);
  const stt = opts.stt ?? cfg.stt ?? STT_CONFIG_DEFAULTS;
  const rate = mimi.config.sample_rate;
  const fs = mimi.frameSize;
  const { padded, frames } = padForStt(pcm, stt, rate, fs);
  if (frames < 1) throw new SttError(`${pcm.length} samples with ${stt.audioSilencePrefixSeconds} s + ${stt.audioDelaySeconds + 1} s of padding make no whole ${fs}-sample frame`);
  const extra = opts.extraHeads ?? gen.lm.numExtraHeads > 0;
  const H = extra ? gen.lm.numExtraHeads : 0;
  const Dh = cfg.extraHeadsDim;
  const shift = maxDelay(cfg) - cfg.delays[0];
  const K = mimi.numCodebooks;
  mimi.reset();
  gen.reset();
  const codes = new Int32Array(frames * nQ);
  const tokens: number[] = [];
  const tokenFrames: number[] = [];
  const heads: Float32Array[] = [];
  let droppedFirst: number | null = null;
  const step = async (c: Int32Array) => {
    if (!extra) {
      const r = await gen.step(c);
      return r && { text: r.text, extraHeads: null };
    }
    return gen.stepWithExtraHeads(c);
  };
  for (let t = 0; t < frames; t++) {
    const c = await mimi.encode(padded.subarray(t * fs, (t + 1) * fs)); // [K, 1]
    if (c.length !== K) throw new Error(`MimiModel.encode returned ${c.length} codes for one frame, expected ${K}`);
    const frameCodes = c.subarray(0, nQ);
    codes.set(frameCodes, t * nQ);
    if (t === 0) {
      const first = await step(frameCodes);
      droppedFirst = first ? first.text : null;
    }
    const r = await step(frameCodes);
    opts.onFrame?.(t, frames, r ? r.text : null);
    if (!r) continue;
    tokens.push(r.text);
    tokenFrames.push(t - shift);
    if (r.extraHeads) heads.push(...r.extraHeads);
  }
  const extraHeads = new Float32Array(tokens.length * H * Dh);
  heads.forEach((p, i) => extraHeads.set(p, i * Dh));
  return {
    inputFrames: frames,
    codes,
    tokens: Int32Array.from(tokens),
    tokenFrames: Int32Array.from(tokenFrames),
    extraHeads,
    numHeads: H,
    headDim: H ? Dh : 0,
    droppedFirst,
    frameSeconds: fs / rate,
    offsetSeconds: stt.audioSilencePrefixSeconds + stt.audioDelaySeconds,
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
export function timedWords(t: Pick<Transcription, 'tokens' | 'tokenFrames' | 'frameSeconds' | 'offsetSeconds'>, tokenizer: TextTokenizer, endOfPaddingId = 0): TimedWord[] {
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
