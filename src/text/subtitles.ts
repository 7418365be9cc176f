/**
 * Subtitles from timed words (a speech-to-text transcript): grouping into cues, SubRip (.srt) and
 * WebVTT (.vtt) text. Pure string work, no model code: the words come from src/models/stt.ts
 * `timedWords` or any other source with the same shape.
 */

/** A word with its times in seconds from the start of the audio (start <= end). */
export interface SubtitleWord {
  text: string;
  start: number;
  end: number;
}

/** One subtitle: the words shown together, from `start` to `end` seconds. */
export interface SubtitleCue {
  text: string;
  start: number;
  end: number;
}

/** How words are grouped into cues. */
export interface CueOptions {
  /** Longest cue text in characters (default 42, the usual subtitle line length); a longer single word stands alone. */
  maxChars?: number;
  /** A silence longer than this between two words (seconds, default 1) starts a new cue. */
  maxGapSeconds?: number;
}

/**
 * Groups words into cues in order: a new cue starts when the next word would make the text longer
 * than `maxChars`, when it starts more than `maxGapSeconds` after the previous word ends, or after
 * a word ending a sentence (`.`, `?`, `!`, `…`). A cue spans its first word's start to its last
 * word's end; words are joined by one space.
 * @throws RangeError for a word with non-finite times or end < start (naming its index)
 */
export function subtitleCues(words: readonly SubtitleWord[], opts: CueOptions = {}): SubtitleCue[] {
  const maxChars = opts.maxChars ?? 42;
  const maxGap = opts.maxGapSeconds ?? 1;
  const cues: SubtitleCue[] = [];
  let cur: SubtitleCue | null = null;
  let prevEnd = 0;
  let sentenceEnded = false;
  words.forEach((w, i) => {
    if (!Number.isFinite(w.start) || !Number.isFinite(w.end) || w.end < w.start || w.start < 0) {
      throw new RangeError(`subtitle word ${i} '${w.text}': times must be finite with 0 <= start <= end, got ${w.start}..${w.end}`);
    }
    const text = w.text.trim();
    if (!text) return;
    if (cur && !sentenceEnded && w.start - prevEnd <= maxGap && cur.text.length + 1 + text.length <= maxChars) {
      cur.text += ` ${text}`;
      cur.end = Math.max(cur.end, w.end);
    } else {
      cur = { text, start: w.start, end: w.end };
      cues.push(cur);
    }
    prevEnd = w.end;
    sentenceEnded = /[.?!…]["')\]]*$/.test(text);
  });
  return cues;
}

/** Seconds as `HH:MM:SS<sep>mmm` (milliseconds rounded). */
function clock(seconds: number, sep: ',' | '.'): string {
  const ms = Math.round(seconds * 1000);
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor(ms / 60_000) % 60;
  const s = Math.floor(ms / 1000) % 60;
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${pad(h)}:${pad(m)}:${pad(s)}${sep}${pad(ms % 1000, 3)}`;
}

/**
 * SubRip text: numbered cues from 1, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, the text, a blank line.
 * A cue of zero length is shown for 1 ms (players skip empty intervals).
 */
export function formatSrt(cues: readonly SubtitleCue[]): string {
  return cues.map((c, i) => `${i + 1}\n${clock(c.start, ',')} --> ${clock(Math.max(c.end, c.start + 0.001), ',')}\n${c.text}\n`).join('\n');
}

/** WebVTT text: the `WEBVTT` header, then `HH:MM:SS.mmm --> HH:MM:SS.mmm` and the text of each cue. */
export function formatVtt(cues: readonly SubtitleCue[]): string {
  return `WEBVTT\n\n${cues.map((c) => `${clock(c.start, '.')} --> ${clock(Math.max(c.end, c.start + 0.001), '.')}\n${c.text}\n`).join('\n')}`;
}
