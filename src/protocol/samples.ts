/**
 * Valid audio samples, shared by every boundary that carries audio (WAV files, the capture worklet, AUDIO_CHUNK packets,
 * the engine's input and output frames). One NaN, infinity or absurdly large sample (1e30) fed
 * to Mimi's streaming encoder poisons its state for the rest of the stream, so every boundary
 * checks samples with `isBadSample` and refuses or zeroes the bad ones (counted).
 */

/**
 * Largest |sample| accepted: 16 (24 dB above full scale). Real audio, even clipped float audio,
 * stays far below; beyond it a value is corruption, not sound.
 */
export const MAX_SAMPLE_ABS = 16;

/** True for NaN, ±Infinity and values beyond ±MAX_SAMPLE_ABS. */
export function isBadSample(v: number): boolean {
  return !(v >= -MAX_SAMPLE_ABS && v <= MAX_SAMPLE_ABS);
}

/**
 * Counts samples that are NaN, ±Infinity or beyond ±`maxAbs` (default MAX_SAMPLE_ABS).
 * @returns the count, and the first such sample's index and value (index -1 and value 0 when none)
 */
export function countBadSamples(x: ArrayLike<number>, maxAbs = MAX_SAMPLE_ABS): { count: number; first: number; value: number } {
  let count = 0;
  let first = -1;
  let value = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (!(v >= -maxAbs && v <= maxAbs)) {
      if (count === 0) {
        first = i;
        value = v;
      }
      count++;
    }
  }
  return { count, first, value };
}

/**
 * Replaces every bad sample (see isBadSample) of `x` in place with 0. Allocates nothing (safe in
 * an AudioWorklet's process()). @returns how many were replaced
 */
export function zeroBadSamples(x: Float32Array, offset = 0, len = x.length - offset): number {
  let n = 0;
  const end = offset + len;
  for (let i = offset; i < end; i++) {
    const v = x[i];
    if (!(v >= -MAX_SAMPLE_ABS && v <= MAX_SAMPLE_ABS)) {
      x[i] = 0;
      n++;
    }
  }
  return n;
}
