// The conversation record (src/engine/conversation_record.ts): both voices as one 24 kHz 16-bit
// stereo WAV (user left, Moshi right, frame by frame), the 10-minute cap counted, and the two
// transcripts as turns in time order.
import { describe, expect, it } from 'vitest';
import { ConversationRecord, turnsOf } from '../../src/engine/conversation_record.ts';

/** The WAV's format fields and its interleaved samples. */
function parse(wav: Uint8Array): { channels: number; rate: number; bits: number; samples: Int16Array } {
  const dv = new DataView(wav.buffer, wav.byteOffset, wav.byteLength);
  const tag = (at: number) => String.fromCharCode(...wav.subarray(at, at + 4));
  expect([tag(0), tag(8), tag(12), tag(36)]).toEqual(['RIFF', 'WAVE', 'fmt ', 'data']);
  const n = dv.getUint32(40, true) / 2;
  return { channels: dv.getUint16(22, true), rate: dv.getUint32(24, true), bits: dv.getUint16(34, true), samples: new Int16Array(wav.slice(44).buffer, 0, n) };
}

describe('ConversationRecord', () => {
  it('interleaves user (left) and Moshi (right) per frame, 16-bit, clipped, non-finite as 0', () => {
    const r = new ConversationRecord();
    const user = new Float32Array(1920).map((_, i) => (i % 7) / 8);
    const moshi = new Float32Array(1920).fill(-0.25);
    moshi[5] = 3; // clipped
    moshi[6] = Number.NaN; // silence
    r.addFrame(user, moshi);
    r.addFrame(moshi, user);
    expect(r.seconds).toBeCloseTo(0.16, 9);
    const w = parse(r.wav());
    expect({ channels: w.channels, rate: w.rate, bits: w.bits }).toEqual({ channels: 2, rate: 24000, bits: 16 });
    expect(w.samples.length).toBe(2 * 2 * 1920);
    expect(w.samples[2 * 3]).toBe(Math.round((3 / 8) * 32768)); // user, frame 0, sample 3
    expect(w.samples[2 * 4 + 1]).toBe(-8192); // Moshi, frame 0
    expect(w.samples[2 * 5 + 1]).toBe(32767);
    expect(w.samples[2 * 6 + 1]).toBe(0);
    expect(w.samples[2 * (1920 + 3) + 1]).toBe(Math.round((3 / 8) * 32768)); // frame 1: the voices swapped
    expect(() => r.addFrame(new Float32Array(10), moshi)).toThrow(/1920 samples per voice, got 10 and 1920/);
  });

  it('keeps at most maxSeconds (whole frames) across chunk boundaries, counts the rest, and says so in the transcript', () => {
    const r = new ConversationRecord(12); // 150 frames: one 10 s chunk and part of a second
    const f = new Float32Array(1920);
    for (let i = 0; i < 160; i++) r.addFrame(f.fill(i / 200), f);
    expect(r.seconds).toBeCloseTo(12, 9);
    expect(r.droppedFrames).toBe(10);
    const w = parse(r.wav());
    expect(w.samples.length).toBe(150 * 1920 * 2);
    expect(w.samples[2 * 149 * 1920]).toBe(Math.round((149 / 200) * 32768)); // the last kept frame, in the second chunk
    expect(r.transcript()).toMatch(/the recording stops at 0:12\.0: 0\.8 s more were not kept/);
    expect(() => new ConversationRecord(0)).toThrow(RangeError);
  });

  it('turns: pieces in time order, a new turn where the speaker changes, pieces joined as written', () => {
    expect(turnsOf([
      { speaker: 'moshi', time: 0.08, text: ' Hello' },
      { speaker: 'moshi', time: 0.16, text: ' there.' },
      { speaker: 'user', time: 0.5, text: ' hi' },
      { speaker: 'user', time: 0.58, text: 'ya' },
      { speaker: 'moshi', time: 0.56, text: ' ' }, // padding-like pieces do not split a turn of the other speaker…
      { speaker: 'moshi', time: 1.2, text: ' How' },
      { speaker: 'moshi', time: 1.28, text: ' are you?' },
    ])).toEqual([
      { speaker: 'moshi', start: 0.08, text: 'Hello there.' },
      { speaker: 'user', start: 0.5, text: 'hiya' },
      { speaker: 'moshi', start: 1.2, text: 'How are you?' },
    ]);
    const r = new ConversationRecord();
    r.addMoshiText(1, ' Hello');
    r.addUserText(0.5, ' hi');
    r.addMoshiText(20, ' Bye.');
    expect(r.transcript()).toBe('[0:00.1] Moshi: Hello\n[0:00.5] You: hi\n[0:01.6] Moshi: Bye.\n');
  });
});
