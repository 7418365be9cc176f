import { describe, expect, it } from 'vitest';
import { countBadSamples, decodeWav, encodeWavF32, encodeWavPcm16, WAV_MAX_ABS, WavError } from '../../src/audio/wav.ts';
import { fixtureF32, nodeFixtures } from '../harness/fixtures.ts';
import { Rng } from '../../src/selftest/rng.ts';

const fx = nodeFixtures();

/** A hand-built RIFF/WAVE file: fmt chunk fields and data bytes as given. */
function buildWav(opts: { tag: number; channels: number; rate: number; bits: number; data: Uint8Array; extraChunk?: Uint8Array; extensibleSub?: number }): Uint8Array {
  const ext = opts.extensibleSub !== undefined;
  const fmtSize = ext ? 40 : 16;
  const extra = opts.extraChunk ?? new Uint8Array(0);
  const out = new Uint8Array(12 + 8 + fmtSize + extra.byteLength + 8 + opts.data.byteLength);
  const dv = new DataView(out.buffer);
  const ascii = (at: number, s: string) => [...s].forEach((ch, i) => (out[at + i] = ch.charCodeAt(0)));
  ascii(0, 'RIFF');
  dv.setUint32(4, out.byteLength - 8, true);
  ascii(8, 'WAVE');
  ascii(12, 'fmt ');
  dv.setUint32(16, fmtSize, true);
  dv.setUint16(20, ext ? 0xfffe : opts.tag, true);
  dv.setUint16(22, opts.channels, true);
  dv.setUint32(24, opts.rate, true);
  dv.setUint32(28, (opts.rate * opts.channels * opts.bits) / 8, true);
  dv.setUint16(32, (opts.channels * opts.bits) / 8, true);
  dv.setUint16(34, opts.bits, true);
  let p = 36;
  if (ext) {
    dv.setUint16(36, 22, true);
    dv.setUint16(38, opts.bits, true);
    dv.setUint32(40, 0, true);
    const guid = [opts.extensibleSub!, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71];
    guid.forEach((b, i) => (out[44 + i] = b));
    p = 60;
  }
  out.set(extra, p);
  p += extra.byteLength;
  ascii(p, 'data');
  dv.setUint32(p + 4, opts.data.byteLength, true);
  out.set(opts.data, p + 8);
  return out;
}

describe('decodeWav', () => {
  it('reads the PCM16 fixture exactly as int16/32768 (= input_pcm_f32)', async () => {
    const wav = decodeWav(await fx('ref/mimi/input_speech_24k_pcm16.wav'), 'input.wav');
    const expected = await fixtureF32(fx, 'ref/mimi/input_pcm_f32.f32.bin');
    expect(wav.sampleRate).toBe(24000);
    expect(wav.format).toBe('pcm16');
    expect(wav.channels).toBe(1);
    expect(wav.samples.length).toBe(69120);
    let maxDiff = 0;
    for (let i = 0; i < expected.length; i++) maxDiff = Math.max(maxDiff, Math.abs(wav.samples[i] - expected[i]));
    expect(maxDiff).toBe(0);
  });

  it('reads the 22.05 kHz espeak output', async () => {
    const bytes = await fx('ref/mimi/espeak_raw_22050.wav');
    const wav = decodeWav(bytes, 'espeak.wav');
    expect(wav.sampleRate).toBe(22050);
    expect(wav.samples.length).toBe((bytes.byteLength - 44) / 2);
  });

  it('round-trips float32 WAV bit for bit, odd lengths included', () => {
    for (const n of [0, 1, 17, 2179]) {
      const x = new Rng(n + 1).normals(n, 0.5);
      const bytes = encodeWavF32(x, 44100);
      const back = decodeWav(bytes, 'f.wav');
      expect(back.format).toBe('float32');
      expect(back.sampleRate).toBe(44100);
      expect(Array.from(back.samples)).toEqual(Array.from(x));
    }
  });

  it('round-trips PCM16 within one quantization step and clips', () => {
    const x = Float32Array.from([0, 0.5, -0.5, 1.5, -1.5, 0.25, 1e-5]);
    const back = decodeWav(encodeWavPcm16(x, 16000), 'p.wav').samples;
    expect(back[0]).toBe(0);
    expect(back[1]).toBe(0.5);
    expect(back[2]).toBe(-0.5);
    expect(back[3]).toBeCloseTo(32767 / 32768, 10);
    expect(back[4]).toBe(-1);
    expect(Math.abs(back[6] - 1e-5)).toBeLessThanOrEqual(0.5 / 32768);
  });

  it('skips unknown chunks, including odd-sized ones with their pad byte', () => {
    const list = new Uint8Array(8 + 3 + 1);
    [...'LIST'].forEach((c, i) => (list[i] = c.charCodeAt(0)));
    new DataView(list.buffer).setUint32(4, 3, true);
    const data = new Uint8Array(new Int16Array([1000, -2000, 3000]).buffer);
    const wav = decodeWav(buildWav({ tag: 1, channels: 1, rate: 8000, bits: 16, data, extraChunk: list }), 'l.wav');
    expect(Array.from(wav.samples)).toEqual([1000 / 32768, -2000 / 32768, 3000 / 32768]);
  });

  it('reads WAVE_FORMAT_EXTENSIBLE float and PCM', () => {
    const f = new Float32Array([0.1, -0.2, 0.3]);
    const wf = decodeWav(buildWav({ tag: 0, channels: 1, rate: 48000, bits: 32, data: new Uint8Array(f.buffer), extensibleSub: 3 }), 'e.wav');
    expect(wf.format).toBe('float32');
    expect(Array.from(wf.samples)).toEqual(Array.from(f));
    const i = new Int16Array([-32768, 16384]);
    const wi = decodeWav(buildWav({ tag: 0, channels: 1, rate: 48000, bits: 16, data: new Uint8Array(i.buffer), extensibleSub: 1 }), 'e.wav');
    expect(Array.from(wi.samples)).toEqual([-1, 0.5]);
  });

  it('multi-channel: an error naming the file and channel count, or the documented mean downmix', () => {
    const st = new Int16Array([1000, 3000, -2000, -4000]);
    const bytes = buildWav({ tag: 1, channels: 2, rate: 24000, bits: 16, data: new Uint8Array(st.buffer) });
    expect(() => decodeWav(bytes, 'stereo.wav')).toThrow(WavError);
    expect(() => decodeWav(bytes, 'stereo.wav')).toThrow(/stereo\.wav: has 2 channels; Mimi takes mono/);
    const mono = decodeWav(bytes, 'stereo.wav', { downmix: true });
    expect(mono.channels).toBe(2);
    expect(Array.from(mono.samples)).toEqual([2000 / 32768, -3000 / 32768]);
  });

  it('rejects non-WAV input, naming the file', () => {
    expect(() => decodeWav(new TextEncoder().encode('{"not": "a wav"}'), 'codes.json')).toThrow(/codes\.json: not a WAV file/);
    expect(() => decodeWav(new Uint8Array(3), 'tiny.wav')).toThrow(/tiny\.wav: not a WAV file .*only 3 bytes/);
    const rifx = encodeWavF32(new Float32Array(4), 24000);
    rifx[8] = 'A'.charCodeAt(0); // RIFF....AAVE
    expect(() => decodeWav(rifx, 'avi.wav')).toThrow(/avi\.wav: not a WAV file/);
  });

  it('rejects unsupported sample formats with a message naming the format', () => {
    const d24 = new Uint8Array(9);
    expect(() => decodeWav(buildWav({ tag: 1, channels: 1, rate: 24000, bits: 24, data: d24 }), 'a24.wav')).toThrow(/a24\.wav: unsupported sample format: integer PCM with 24 bits/);
    const d64 = new Uint8Array(16);
    expect(() => decodeWav(buildWav({ tag: 3, channels: 1, rate: 24000, bits: 64, data: d64 }), 'f64.wav')).toThrow(/IEEE float with 64 bits/);
    expect(() => decodeWav(buildWav({ tag: 6, channels: 1, rate: 8000, bits: 8, data: new Uint8Array(4) }), 'alaw.wav')).toThrow(/format tag 0x6/);
  });

  it('rejects truncated files', () => {
    const full = encodeWavF32(new Float32Array(100), 24000);
    expect(() => decodeWav(full.subarray(0, full.byteLength - 10), 'cut.wav')).toThrow(/cut\.wav: truncated: the 'data' chunk declares 400 bytes, only 390/);
    expect(() => decodeWav(full.subarray(0, 30), 'cut.wav')).toThrow(/cut\.wav: truncated: 'fmt ' chunk/);
    expect(() => decodeWav(full.subarray(0, 12), 'hdr.wav')).toThrow(/hdr\.wav: no 'fmt ' chunk/);
    const odd = buildWav({ tag: 1, channels: 1, rate: 8000, bits: 16, data: new Uint8Array(5) });
    expect(() => decodeWav(odd, 'odd.wav')).toThrow(/odd\.wav: truncated: the 'data' chunk has 5 bytes, not a whole number of 2-byte frames/);
  });

  it('refuses sample rates outside [1 kHz, 384 kHz], naming the rate', () => {
    const d = new Uint8Array(8);
    for (const rate of [1, 999, 384001, 0xffffffff]) {
      expect(() => decodeWav(buildWav({ tag: 1, channels: 1, rate, bits: 16, data: d }), 'r.wav')).toThrow(new RegExp(`r\\.wav: sample rate ${rate} Hz .* outside \\[1000, 384000\\]`));
    }
    for (const rate of [1000, 384000]) expect(decodeWav(buildWav({ tag: 1, channels: 1, rate, bits: 16, data: d })).sampleRate).toBe(rate);
  });

  it('refuses NaN, infinite or absurd float samples, naming the count and the first one', () => {
    for (const [bad, shown] of [[NaN, 'NaN'], [Infinity, 'Infinity'], [-Infinity, '-Infinity'], [1e30, '1[.\\d]*e\\+30'], [-(WAV_MAX_ABS + 1), `-${WAV_MAX_ABS + 1}`]] as const) {
      const x = new Float32Array(50).fill(0.25);
      x[7] = bad;
      x[30] = bad;
      expect(() => decodeWav(encodeWavF32(x, 24000), 'nan.wav')).toThrow(new RegExp(`nan\\.wav: 2 sample\\(s\\) are not finite or beyond ±${WAV_MAX_ABS} \\(first: frame 7 = ${shown}\\)`));
    }
    // Loud but plausible float audio passes unchanged.
    const loud = Float32Array.from({ length: 10 }, (_, i) => (i % 2 ? -1 : 1) * WAV_MAX_ABS);
    expect(Array.from(decodeWav(encodeWavF32(loud, 24000)).samples)).toEqual(Array.from(loud));
    expect(countBadSamples([0, 1, NaN, 2])).toEqual({ count: 1, first: 2, value: NaN });
    expect(countBadSamples([0, 1])).toEqual({ count: 0, first: -1, value: 0 });
  });

  it('reads streaming headers (data size 0xFFFFFFFF: to the end of the file, whole frames)', () => {
    const x = Float32Array.from({ length: 9 }, (_, i) => i / 16);
    const w = encodeWavF32(x, 16000);
    const dv = new DataView(w.buffer);
    dv.setUint32(4, 0xffffffff, true);
    dv.setUint32(54, 0xffffffff, true); // the data chunk's size field
    expect(Array.from(decodeWav(w, 's.wav').samples)).toEqual(Array.from(x));
    const ragged = new Uint8Array(w.byteLength + 3);
    ragged.set(w);
    expect(Array.from(decodeWav(ragged, 's.wav').samples)).toEqual(Array.from(x)); // 3 stray bytes: not a whole frame
    // A size that is merely wrong is still truncation.
    dv.setUint32(54, 4000, true);
    expect(() => decodeWav(w, 'cut.wav')).toThrow(/cut\.wav: truncated: the 'data' chunk declares 4000 bytes/);
  });
});
