import { describe, expect, it } from 'vitest';
import { TextSegmenter, TranscriptAssembler, seqBefore } from '../../src/engine/transcript.ts';

describe('TextSegmenter (engine side)', () => {
  it('sends every piece as a partial and each finished word once as a final', () => {
    const s = new TextSegmenter();
    const out = [' Hel', 'lo', ' wor', 'ld', null, ' again', null].map((t) => s.step(t));
    expect(out.map((o) => o.partial)).toEqual([' Hel', 'lo', ' wor', 'ld', null, ' again', null]);
    expect(out.map((o) => o.final)).toEqual([null, null, ' Hello', null, ' world', null, ' again']);
    expect(s.flush()).toBeNull();
  });
  it('flush() ends the segment in progress (loop stopped)', () => {
    const s = new TextSegmenter();
    s.step('[12]');
    s.step('[7]');
    expect(s.flush()).toBe('[12][7]');
    expect(s.flush()).toBeNull();
  });
});

describe('TranscriptAssembler (page side)', () => {
  it('shows finals plus the partial tail; a final replaces its partials', () => {
    const a = new TranscriptAssembler();
    a.onPartial(1, ' Hel');
    a.onPartial(2, 'lo');
    expect(a.text).toBe(' Hel' + 'lo');
    a.onFinal(3, ' Hello');
    a.onPartial(4, ' wor');
    expect(a.text).toBe(' Hello wor');
    expect(a.committed).toBe(' Hello');
  });
  it('keeps the full text when partials were dropped, and ignores partials the final overtook', () => {
    const a = new TranscriptAssembler();
    a.onPartial(10, ' Hel'); // 'lo' (seq 11) dropped under backpressure
    a.onFinal(12, ' Hello');
    expect(a.onPartial(11, 'lo')).toBe(false); // arrives late: stale
    expect(a.text).toBe(' Hello');
    expect(a.onPartial(13, ' you')).toBe(true);
    expect(a.text).toBe(' Hello you');
    a.reset();
    expect(a.text).toBe('');
  });
  it('orders sequence numbers across the u32 wrap', () => {
    expect(seqBefore(1, 2)).toBe(true);
    expect(seqBefore(2, 1)).toBe(false);
    expect(seqBefore(0xfffffffe, 1)).toBe(true);
    expect(seqBefore(1, 0xfffffffe)).toBe(false);
    expect(seqBefore(5, 5)).toBe(false);
  });
});

describe('TranscriptAssembler across conversations', () => {
  it('a new conversation over a new channel (seqs start again) is not frozen, and starts a new section', () => {
    const a = new TranscriptAssembler();
    a.onPartial(500, ' Hi');
    a.onFinal(501, ' Hi');
    a.onPartial(502, ' there');
    // Microphone -> file: a new packet channel, its sequence numbers start at 1.
    a.startSection();
    expect(a.onPartial(1, ' Bon')).toBe(true);
    expect(a.text).toBe('Hi there\n\n Bon');
    a.onFinal(2, ' Bonjour');
    expect(a.text).toBe('Hi there\n\n Bonjour');
    expect(a.sections).toEqual(['Hi there']);
  });
  it('an empty conversation adds no section', () => {
    const a = new TranscriptAssembler();
    a.startSection();
    a.startSection();
    expect(a.text).toBe('');
    a.onPartial(1, ' one');
    a.startSection();
    a.startSection();
    a.onPartial(1, ' two');
    expect(a.text).toBe('one\n\n two');
  });
});
