/**
 * The conversation as a record: both voices at 24 kHz, aligned in the model's time (step t's
 * input frame, what the user said, beside step t's output frame, what Moshi said while hearing
 * it: the reply the model computed, not delayed by the page's playback), and both transcripts as
 * turns. The engine Worker fills one per conversation when the page asks for a recording
 * (StartOptions.record); the page downloads it as a stereo WAV (user left, Moshi right) and a
 * text transcript.
 *
 * Memory: 16-bit samples, 96 kB per second of conversation; at most `maxSeconds` (default 600 s,
 * 57.6 MB) are kept, later frames are counted in `droppedFrames` and the transcript says so.
 */
import { encodeWavPcm16 } from '../audio/wav.ts';
import { FRAME_SAMPLES } from './metrics.ts';

/** One turn of the transcript: consecutive words of one speaker, from `start` seconds. */
export interface Turn {
  speaker: 'user' | 'moshi';
  start: number;
  text: string;
}

/** Seconds per 80 ms frame. */
const FRAME_SECONDS = FRAME_SAMPLES / 24000;
/** Frames per stored chunk (10 s). */
const CHUNK_FRAMES = 125;

/**
 * Groups timed pieces into turns: sorted by time (a stable sort: pieces at the same time keep their
 * order), a new turn where the speaker changes. Pieces of text are joined as they are (a piece
 * carries its own leading space, as SentencePiece pieces do); turns are trimmed, empty ones dropped.
 */
export function turnsOf(pieces: readonly { speaker: Turn['speaker']; time: number; text: string }[]): Turn[] {
  const sorted = pieces.map((p, i) => ({ p, i })).sort((a, b) => a.p.time - b.p.time || a.i - b.i).map((x) => x.p);
  const out: Turn[] = [];
  for (const p of sorted) {
    if (!p.text.trim() && !(out.length && out[out.length - 1].speaker === p.speaker)) continue;
    const last = out[out.length - 1];
    if (last && last.speaker === p.speaker) last.text += p.text;
    else out.push({ speaker: p.speaker, start: p.time, text: p.text });
  }
  return out.map((t) => ({ ...t, text: t.text.trim() })).filter((t) => t.text);
}

/** `m:ss.s` for a transcript line. */
function clock(seconds: number): string {
  const m = Math.floor(seconds / 60);
  const s = seconds - 60 * m;
  return `${m}:${s < 10 ? '0' : ''}${s.toFixed(1)}`;
}

export class ConversationRecord {
  private readonly chunks: Int16Array[] = [];
  private frames = 0;
  /** Frames past `maxSeconds` that were not kept. */
  droppedFrames = 0;
  private readonly pieces: { speaker: Turn['speaker']; time: number; text: string }[] = [];

  /** @param maxSeconds audio kept at most (whole 80 ms frames); RangeError unless > 0 */
  constructor(readonly maxSeconds = 600) {
    if (!(maxSeconds > 0)) throw new RangeError(`ConversationRecord: maxSeconds must be > 0, got ${maxSeconds}`);
  }

  /** Seconds of audio kept. */
  get seconds(): number {
    return this.frames * FRAME_SECONDS;
  }

  /**
   * Adds one step: the user's input frame and Moshi's output frame (f32 [1920] each, 24 kHz),
   * clipped to [-1, 1) and rounded to 16 bits.
   * @throws RangeError when a frame is not 1920 samples
   */
  addFrame(user: Float32Array, moshi: Float32Array): void {
    if (user.length !== FRAME_SAMPLES || moshi.length !== FRAME_SAMPLES) throw new RangeError(`ConversationRecord.addFrame takes ${FRAME_SAMPLES} samples per voice, got ${user.length} and ${moshi.length}`);
    if (this.seconds + FRAME_SECONDS > this.maxSeconds + 1e-9) {
      this.droppedFrames++;
      return;
    }
    const k = this.frames % CHUNK_FRAMES;
    if (k === 0) this.chunks.push(new Int16Array(CHUNK_FRAMES * FRAME_SAMPLES * 2));
    const c = this.chunks[this.chunks.length - 1];
    const q = (v: number) => Math.round(Math.max(-1, Math.min(32767 / 32768, Number.isFinite(v) ? v : 0)) * 32768);
    for (let i = 0, o = k * FRAME_SAMPLES * 2; i < FRAME_SAMPLES; i++, o += 2) {
      c[o] = q(user[i]);
      c[o + 1] = q(moshi[i]);
    }
    this.frames++;
  }

  /** A piece of Moshi's text at step `step` (its time: step × 80 ms). */
  addMoshiText(step: number, text: string): void {
    this.pieces.push({ speaker: 'moshi', time: step * FRAME_SECONDS, text });
  }

  /** A piece of the user's words (a caption's text) at `time` seconds (the caption's time). */
  addUserText(time: number, text: string): void {
    this.pieces.push({ speaker: 'user', time, text });
  }

  /** The turns so far (turnsOf). */
  turns(): Turn[] {
    return turnsOf(this.pieces);
  }

  /** The transcript as text: one line per turn, `[m:ss.s] You: …` / `[m:ss.s] Moshi: …`. */
  transcript(): string {
    const lines = this.turns().map((t) => `[${clock(t.start)}] ${t.speaker === 'user' ? 'You' : 'Moshi'}: ${t.text}`);
    if (this.droppedFrames) lines.push(`(the recording stops at ${clock(this.maxSeconds)}: ${(this.droppedFrames * FRAME_SECONDS).toFixed(1)} s more were not kept)`);
    return lines.length ? `${lines.join('\n')}\n` : '';
  }

  /** The audio as a 24 kHz 16-bit stereo WAV: the user left, Moshi right. */
  wav(): Uint8Array {
    const all = new Int16Array(this.frames * FRAME_SAMPLES * 2);
    this.chunks.forEach((c, i) => {
      const n = Math.min(CHUNK_FRAMES, this.frames - i * CHUNK_FRAMES) * FRAME_SAMPLES * 2;
      all.set(c.subarray(0, n), i * CHUNK_FRAMES * FRAME_SAMPLES * 2);
    });
    return encodeWavPcm16(all, 24000, 2);
  }
}
