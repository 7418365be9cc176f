/**
 * Moshi's words on their way from the engine to the page, as TEXT_PARTIAL and TEXT_FINAL packets.
 *
 * Engine side (`TextSegmenter`): every text piece leaves at once as a TEXT_PARTIAL (cheap, no
 * ack, the first thing dropped under backpressure); the pieces of a finished segment leave again,
 * joined, as one TEXT_FINAL (acknowledged and resent until received). A segment ends when the next
 * piece starts a new word (leading whitespace, SentencePiece's U+2581 already turned into a
 * space), at a step without text (Moshi pads its text stream between words), or at `flush()`
 * (the loop stops). So the page's transcript is complete even when partials were dropped.
 *
 * Page side (`TranscriptAssembler`): the transcript is the committed TEXT_FINAL text plus the
 * partial tail of the segment in progress. A TEXT_FINAL replaces the partial tail (it holds the
 * same pieces); a TEXT_PARTIAL sent before the last applied TEXT_FINAL (a lower seq: priority
 * queues let finals overtake queued partials) is stale and ignored.
 */

/** What to send after one step. */
export interface TextSends {
  /** The step's piece as a TEXT_PARTIAL, or null. */
  partial: string | null;
  /** A finished segment as a TEXT_FINAL (sent before the partial), or null. */
  final: string | null;
}

export class TextSegmenter {
  private pending = '';

  /** `text`: the step's text (Engine StepResult.text), null for a step without text. */
  step(text: string | null): TextSends {
    if (text === null || text === '') {
      return { partial: null, final: this.flush() };
    }
    let final: string | null = null;
    if (/^\s/.test(text) && this.pending !== '') {
      final = this.pending;
      this.pending = '';
    }
    this.pending += text;
    return { partial: text, final };
  }

  /** Ends the segment in progress: its text for a TEXT_FINAL, or null when there is none. */
  flush(): string | null {
    const f = this.pending === '' ? null : this.pending;
    this.pending = '';
    return f;
  }
}

/** True when u32 sequence number `a` was assigned before `b` (wrapping). */
export function seqBefore(a: number, b: number): boolean {
  const d = (b - a) >>> 0;
  return d !== 0 && d < 0x80000000;
}

export class TranscriptAssembler {
  /** Text of every TEXT_FINAL received in the current section (conversation). */
  committed = '';
  /** Pieces of the segment in progress (TEXT_PARTIAL since the last TEXT_FINAL). */
  partial = '';
  /** The transcripts of the earlier conversations, oldest first. */
  readonly sections: string[] = [];
  private lastFinalSeq: number | null = null;

  /** Applies a TEXT_PARTIAL; returns false when it was stale (ignored). */
  onPartial(seq: number, text: string): boolean {
    if (this.lastFinalSeq !== null && seqBefore(seq, this.lastFinalSeq)) return false;
    this.partial += text;
    return true;
  }

  /** Applies a TEXT_FINAL. */
  onFinal(seq: number, text: string): void {
    this.committed += text;
    this.partial = '';
    this.lastFinalSeq = seq;
  }

  /**
   * A new conversation starts (microphone or file, possibly over a new packet channel whose
   * sequence numbers start again): the current text becomes an earlier section and the sequence
   * order of the previous channel no longer applies.
   */
  startSection(): void {
    const current = this.current.trim();
    if (current !== '') this.sections.push(current);
    this.committed = '';
    this.partial = '';
    this.lastFinalSeq = null;
  }

  /** The current conversation's text. */
  get current(): string {
    return this.committed + this.partial;
  }

  /** The transcript to show: every section, a blank line between two. */
  get text(): string {
    const current = this.current.trim();
    return [...this.sections, ...(current ? [this.current] : [])].join('\n\n');
  }

  reset(): void {
    this.sections.length = 0;
    this.committed = '';
    this.partial = '';
    this.lastFinalSeq = null;
  }
}
