/**
 * The Transcribe mode's captions as data (no DOM): the steps a speech-to-text model sent
 * ('caption' METADATA packets, src/engine/worker_api.ts CaptionMeta), kept in step order, and
 * what the page makes of them: the transcript text (as moshi/run_inference.py prints it), the
 * timed words (src/models/stt.ts `timedWords`), the pauses of an extra head, and the .txt / .srt /
 * .vtt files (src/text/subtitles.ts).
 */
import type { CaptionMeta, SttModelInfo } from '../engine/worker_api.ts';
import { type TimedWord, timedWords } from '../models/stt.ts';
import { formatSrt, formatVtt, subtitleCues } from '../text/subtitles.ts';

/** The captions of one run, by step index. */
export class CaptionTrack {
  /** Steps received, by their `step` index (a resent packet replaces the same index). */
  readonly steps: CaptionMeta[] = [];
  /** True once the run's 'caption-end' arrived. */
  ended = false;

  constructor(readonly info: SttModelInfo) {}

  /**
   * Adds one caption.
   * @throws RangeError for a step index that is not an integer >= 0, or extra heads of another size than the model's H · Dh
   */
  add(c: CaptionMeta): void {
    if (!Number.isSafeInteger(c.step) || c.step < 0) throw new RangeError(`caption step must be an integer >= 0, got ${c.step}`);
    if (c.heads.length !== this.info.numHeads * this.info.headDim) throw new RangeError(`caption ${c.step} has ${c.heads.length} extra-head values, the model has ${this.info.numHeads} × ${this.info.headDim}`);
    this.steps[c.step] = c;
  }

  /** Steps 0 … n−1 all received (the leading run without gaps). */
  get complete(): CaptionMeta[] {
    const out: CaptionMeta[] = [];
    for (let i = 0; i < this.steps.length && this.steps[i]; i++) out.push(this.steps[i]);
    return out;
  }

  /** Text tokens of the complete steps, i32 [F]. */
  get tokens(): Int32Array {
    return Int32Array.from(this.complete, (c) => c.token);
  }

  /** The transcript as run_inference.py prints it: every step's text (padding prints nothing), trimmed. */
  text(): string {
    return this.complete.map((c) => c.text ?? (c.piece === null ? `[${c.token}]` : '')).join('').trim();
  }

  /** The words with their times (seconds from the start of the input), src/models/stt.ts `timedWords`. */
  words(): TimedWord[] {
    const steps = this.complete;
    const byId = new Map<number, CaptionMeta>();
    for (const c of steps) byId.set(c.token, c);
    const tok = {
      // Without a tokenizer every id stands alone as a word ('▁').
      piece: (id: number) => byId.get(id)?.piece ?? '\u2581',
      decodePiece: (id: number) => {
        const c = byId.get(id);
        if (!c) return null;
        return c.piece === null ? `[${id}]` : c.text;
      },
    };
    return timedWords({
      tokens: Int32Array.from(steps, (c) => c.token),
      tokenFrames: Int32Array.from(steps, (c) => c.frame),
      frameSeconds: this.info.frameSeconds,
      offsetSeconds: this.info.audioSilencePrefixSeconds + this.info.audioDelaySeconds,
    }, tok, this.info.endOfPaddingId);
  }

  /** Probability of output 0 of extra head `head` at each complete step (the pause / end-of-turn probability of Kyutai's VAD heads). */
  headProbabilities(head: number): number[] {
    const { numHeads, headDim } = this.info;
    if (!Number.isInteger(head) || head < 0 || head >= numHeads) throw new RangeError(`extra head ${head} does not exist: the model has ${numHeads}`);
    return this.complete.map((c) => c.heads[head * headDim]);
  }

  /**
   * Steps at which head `head`'s probability rises above `threshold` (from at or below it, or at
   * the first step): where the page shows a pause marker.
   * @throws RangeError for a threshold outside [0, 1] or a head the model does not have
   */
  pauses(head: number, threshold: number): number[] {
    if (!(threshold >= 0 && threshold <= 1)) throw new RangeError(`pause threshold must be a probability in [0, 1], got ${threshold}`);
    const p = this.headProbabilities(head);
    const out: number[] = [];
    let above = false;
    p.forEach((v, i) => {
      const now = v > threshold;
      if (now && !above) out.push(i);
      above = now;
    });
    return out;
  }

  /** The downloads: the transcript text (.txt), SubRip (.srt) and WebVTT (.vtt) of the words. */
  files(): { txt: string; srt: string; vtt: string } {
    const cues = subtitleCues(this.words());
    const text = this.text();
    return { txt: text ? `${text}\n` : '', srt: formatSrt(cues), vtt: formatVtt(cues) };
  }
}
