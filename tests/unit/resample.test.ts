import { describe, expect, it } from 'vitest';
import { designResampler, resample, resampledLength, StreamingResampler } from '../../src/audio/resample.ts';
import { decodeWav } from '../../src/audio/wav.ts';
import { nodeFixtures } from '../harness/fixtures.ts';
import { Rng } from '../../src/selftest/rng.ts';

function sine(n: number, rate: number, hz: number, amp = 0.5, phase = 0.3): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = amp * Math.sin((2 * Math.PI * hz * i) / rate + phase);
  return x;
}

/** Max |y - expected sine| over the interior (away from the zero-padded edges). */
function sineError(y: Float32Array, rate: number, hz: number, amp: number, phase: number, margin: number): number {
  let worst = 0;
  for (let i = margin; i < y.length - margin; i++) {
    worst = Math.max(worst, Math.abs(y[i] - amp * Math.sin((2 * Math.PI * hz * i) / rate + phase)));
  }
  return worst;
}

function rms(y: Float32Array, margin: number): number {
  let s = 0;
  for (let i = margin; i < y.length - margin; i++) s += y[i] * y[i];
  return Math.sqrt(s / (y.length - 2 * margin));
}

const PAIRS: [number, number][] = [
  [48000, 24000],
  [44100, 24000],
  [24000, 48000],
  [24000, 44100],
  [22050, 24000],
  [16000, 24000],
];

describe('resample (offline)', () => {
  it('lengths are ceil(N·out/in), odd sizes included', () => {
    for (const [a, b] of PAIRS) {
      for (const n of [0, 1, 3, 17, 63, 315, 2179]) {
        const y = resample(new Float32Array(n), a, b);
        expect(y.length).toBe(Math.ceil((n * b) / a));
        expect(resampledLength(n, a, b)).toBe(y.length);
      }
    }
    expect(resample(new Float32Array(48000), 48000, 24000).length).toBe(24000);
    expect(resample(new Float32Array(44100), 44100, 24000).length).toBe(24000);
  });

  it('same rate is an exact copy', () => {
    const x = new Rng(3).normals(315);
    const y = resample(x, 24000, 24000);
    expect(Array.from(y)).toEqual(Array.from(x));
    expect(y).not.toBe(x);
  });

  it('keeps sines below the new Nyquist (amplitude and phase, max error < 1e-3 of a 0.5 sine)', () => {
    for (const [a, b] of PAIRS) {
      const nyq = Math.min(a, b) / 2;
      for (const hz of [440, 3000, 0.8 * nyq]) {
        const x = sine(a / 4, a, hz, 0.5, 0.3);
        const y = resample(x, a, b);
        const err = sineError(y, b, hz, 0.5, 0.3, 200);
        expect(err, `${a}->${b} ${hz} Hz`).toBeLessThan(5e-4);
      }
    }
  });

  it('attenuates content above the new Nyquist by at least 70 dB (48k/44.1k -> 24k)', () => {
    for (const a of [48000, 44100]) {
      for (const hz of [12500, 14000, 20000]) {
        const y = resample(sine(a / 4, a, hz, 1, 0), a, 24000);
        const level = rms(y, 200) / Math.SQRT1_2;
        expect(20 * Math.log10(level), `${a} Hz input, ${hz} Hz tone`).toBeLessThan(-70);
      }
    }
  });

  it('upsampling 24k -> 48k puts nothing above 12 kHz (no imaging)', () => {
    const y = resample(sine(6000, 24000, 9000, 0.5, 0), 24000, 48000);
    // Remove the 9 kHz tone by subtracting the ideal sine, the rest is error + images.
    const err = sineError(y, 48000, 9000, 0.5, 0, 300);
    expect(err).toBeLessThan(5e-4);
  });

  it('the filter table: unit DC gain per phase, cutoff below the lower Nyquist', () => {
    const d = designResampler(44100, 24000);
    expect(d.up).toBe(80);
    expect(d.down).toBe(147);
    expect(d.cutoffHz).toBeGreaterThan(10500);
    expect(d.cutoffHz).toBeLessThan(12000);
    for (let p = 0; p < d.up; p++) {
      let s = 0;
      for (let j = 0; j < d.taps; j++) s += d.table[p * d.taps + j];
      expect(Math.abs(s - 1)).toBeLessThan(1e-5);
    }
  });

  it('rejects bad rates with a clear error', () => {
    expect(() => resample(new Float32Array(4), 0, 24000)).toThrow(/inRate must be an integer/);
    expect(() => resample(new Float32Array(4), 44100.5, 24000)).toThrow(/inRate must be an integer/);
    expect(() => new StreamingResampler(48000, 24000, 0)).toThrow(/maxBlock/);
  });

  it('resamples the 22.05 kHz espeak fixture to 24 kHz, preserving its level', async () => {
    const wav = decodeWav(await nodeFixtures()('ref/mimi/espeak_raw_22050.wav'), 'espeak.wav');
    const y = resample(wav.samples, 22050, 24000);
    expect(y.length).toBe(Math.ceil((wav.samples.length * 24000) / 22050));
    const r = rms(y, 0) / rms(wav.samples, 0);
    expect(Math.abs(r - 1)).toBeLessThan(0.02);
    // The fixture's 24 kHz input was made from this file by SoX (`sox -R -D ... -r 24000`, first
    // 69120 samples): ours agrees with SoX's resampler to ~44 dB SNR, aligned at lag 0.
    const sox = decodeWav(await nodeFixtures()('ref/mimi/input_speech_24k_pcm16.wav'), 'input.wav').samples;
    let err = 0;
    let sig = 0;
    for (let i = 0; i < sox.length; i++) {
      err += (y[i] - sox[i]) ** 2;
      sig += sox[i] ** 2;
    }
    expect(10 * Math.log10(sig / err)).toBeGreaterThan(40);
  });
});

describe('StreamingResampler', () => {
  it('streaming output (blocks of random sizes) + flush equals offline output', () => {
    const rng = new Rng(7);
    for (const [a, b] of [...PAIRS, [24000, 24000] as [number, number]]) {
      const x = rng.normals(5000, 0.3);
      const offline = resample(x, a, b);
      const maxBlock = 256;
      const s = new StreamingResampler(a, b, maxBlock);
      const out = new Float32Array(s.maxOutput(maxBlock));
      const got: number[] = [];
      let i = 0;
      while (i < x.length) {
        const n = Math.min(x.length - i, 1 + rng.int(maxBlock));
        const w = s.process(x.subarray(i, i + n), out);
        for (let k = 0; k < w; k++) got.push(out[k]);
        i += n;
      }
      const tail = new Float32Array(s.flushLength());
      const w = s.flush(tail);
      expect(w).toBe(tail.length);
      got.push(...tail);
      expect(got.length, `${a}->${b}`).toBe(offline.length);
      let maxDiff = 0;
      for (let k = 0; k < got.length; k++) maxDiff = Math.max(maxDiff, Math.abs(got[k] - offline[k]));
      expect(maxDiff, `${a}->${b}`).toBeLessThanOrEqual(1e-7);
    }
  });

  it('AudioWorklet-style 128-sample blocks at 48 kHz give 64 samples each once primed; reset restarts', () => {
    const s = new StreamingResampler(48000, 24000, 128);
    const out = new Float32Array(s.maxOutput(128));
    const x = sine(128 * 20, 48000, 1000, 0.5, 0);
    const counts: number[] = [];
    for (let b = 0; b < 20; b++) counts.push(s.process(x.subarray(b * 128, (b + 1) * 128), out));
    expect(counts.slice(2).every((c) => c === 64)).toBe(true);
    const total = counts.reduce((p, c) => p + c, 0);
    expect(total + s.flushLength()).toBe(1280);
    expect(s.latencySeconds).toBeGreaterThan(0);
    expect(s.latencySeconds).toBeLessThan(0.003);
    s.reset();
    const again: number[] = [];
    for (let b = 0; b < 20; b++) again.push(s.process(x.subarray(b * 128, (b + 1) * 128), out));
    expect(again).toEqual(counts);
  });

  it('44.1 kHz -> 24 kHz blocks never exceed maxOutput and the totals add up', () => {
    const s = new StreamingResampler(44100, 24000, 128);
    const out = new Float32Array(s.maxOutput(128));
    let total = 0;
    for (let b = 0; b < 400; b++) {
      const w = s.process(new Float32Array(128), out);
      expect(w).toBeLessThanOrEqual(out.length);
      total += w;
    }
    expect(total + s.flushLength()).toBe(Math.ceil((400 * 128 * 24000) / 44100));
  });

  it('errors: block over maxBlock, output too small, process after flush', () => {
    const s = new StreamingResampler(48000, 24000, 128);
    expect(() => s.process(new Float32Array(129), new Float32Array(100))).toThrow(/block of 129 samples \(max 128/);
    expect(() => s.process(new Float32Array(128), new Float32Array(10))).toThrow(/output buffer of 10 samples, need 65/);
    s.flush(new Float32Array(s.flushLength()));
    expect(() => s.process(new Float32Array(8), new Float32Array(100))).toThrow(/after flush/);
  });
});
