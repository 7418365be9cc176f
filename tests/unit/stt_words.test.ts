import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { padForStt, sttPadding, timedWords } from '../../src/models/stt.ts';
import { formatSrt, formatVtt, subtitleCues } from '../../src/text/subtitles.ts';
import { TextTokenizer } from '../../src/text/tokenizer.ts';

const SPM = resolve(import.meta.dirname, '../fixtures/spm/tiny_unigram.model');

describe('STT padding (run_inference.py)', () => {
  it('pads int(prefix·24000) left and int((delay + 1)·24000) right, keeps whole 1920-sample frames', () => {
    expect(sttPadding({ audioDelaySeconds: 0.5, audioSilencePrefixSeconds: 0 }, 24000)).toEqual({ left: 0, right: 36000 });
    expect(sttPadding({ audioDelaySeconds: 2.5, audioSilencePrefixSeconds: 1 }, 24000)).toEqual({ left: 24000, right: 84000 });
    // The fixture: 69120 + 36000 = 105120 samples = 54.75 frames -> 54.
    const pcm = Float32Array.from({ length: 69120 }, (_, i) => (i % 7) + 1);
    const a = padForStt(pcm, { audioDelaySeconds: 0.5, audioSilencePrefixSeconds: 0 }, 24000, 1920);
    expect(a.frames).toBe(54);
    expect(a.padded.length).toBe(54 * 1920);
    expect(Array.from(a.padded.subarray(0, 69120))).toEqual(Array.from(pcm));
    expect(a.padded.subarray(69120).every((x) => x === 0)).toBe(true);
    const b = padForStt(pcm.subarray(0, 100), { audioDelaySeconds: 0, audioSilencePrefixSeconds: 0.1 }, 24000, 1920);
    expect(b.frames).toBe(Math.floor((2400 + 100 + 24000) / 1920));
    expect(b.padded.subarray(0, 2400).every((x) => x === 0)).toBe(true);
    expect(b.padded[2400]).toBe(1);
  });
});

describe('timedWords', () => {
  it('words start at ▁ pieces, end at the next end-of-padding (0) or word; frame × 80 ms − offset, clamped at 0', async () => {
    const tok = await TextTokenizer.fromBytes(new Uint8Array(readFileSync(SPM)));
    expect([tok.piece(9), tok.piece(5), tok.piece(7)]).toEqual(['▁the', 's', '▁a']);
    const tokens = Int32Array.from([3, 9, 5, 3, 3, 0, 7, 3, 0, 9]);
    const w = timedWords({ tokens, tokenFrames: Int32Array.from(tokens, (_, i) => i), frameSeconds: 0.08, offsetSeconds: 0.16 }, tok);
    expect(w.map((x) => x.text)).toEqual(['thes', 'a', 'the']);
    const times = w.flatMap((x) => [x.start, x.end]);
    [0, 0.24, 0.32, 0.48, 0.56, 0.64].forEach((t, i) => expect(times[i]).toBeCloseTo(t, 9));
    // A word followed directly by another ends where the next starts.
    const v = timedWords({ tokens: Int32Array.from([9, 7]), tokenFrames: Int32Array.from([2, 5]), frameSeconds: 0.08, offsetSeconds: 0 }, tok);
    expect(v).toEqual([{ text: 'the', start: 0.16, end: 0.4 }, { text: 'a', start: 0.4, end: 0.48 }]);
  });
});

describe('subtitles', () => {
  const words = [
    { text: 'Hello', start: 0, end: 0.4 },
    { text: 'world.', start: 0.4, end: 0.9 },
    { text: 'After', start: 1.0, end: 1.2 },
    { text: 'silence', start: 3.5, end: 4 },
    { text: 'and', start: 4, end: 4.1 },
  ];
  it('cues break after a sentence end, at a gap over 1 s, and before exceeding maxChars', () => {
    expect(subtitleCues(words)).toEqual([
      { text: 'Hello world.', start: 0, end: 0.9 },
      { text: 'After', start: 1, end: 1.2 },
      { text: 'silence and', start: 3.5, end: 4.1 },
    ]);
    expect(subtitleCues(words.slice(3), { maxChars: 8 }).map((c) => c.text)).toEqual(['silence', 'and']);
    expect(() => subtitleCues([{ text: 'x', start: 2, end: 1 }])).toThrow(/subtitle word 0 'x': times must be finite with 0 <= start <= end, got 2\.\.1/);
  });
  it('SRT and VTT text', () => {
    const cues = subtitleCues(words.slice(0, 2).concat([{ text: 'late', start: 3725.5, end: 3725.5 }]));
    expect(formatSrt(cues)).toBe('1\n00:00:00,000 --> 00:00:00,900\nHello world.\n\n2\n01:02:05,500 --> 01:02:05,501\nlate\n');
    expect(formatVtt(cues)).toBe('WEBVTT\n\n00:00:00.000 --> 00:00:00.900\nHello world.\n\n01:02:05.500 --> 01:02:05.501\nlate\n');
  });
});
