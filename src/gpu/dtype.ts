/**
 * Element types of GPU tensors and CPU-side conversions.
 *
 * f16 and bf16 are stored packed, two per u32 (element 2i in the low 16 bits, 2i+1 in the high
 * 16 bits), so every adapter can read them: WGSL unpacks with `unpack2x16float` (f16) or a shift
 * (bf16). A tensor of n half elements occupies ceil(n/2)*4 bytes.
 */
export type DType = 'f32' | 'i32' | 'u32' | 'f16' | 'bf16';

export const DTYPES: readonly DType[] = ['f32', 'i32', 'u32', 'f16', 'bf16'];

/** Bytes a tensor of `numel` elements of `dtype` occupies in a GPU buffer (before 4-byte rounding). */
export function storageBytes(dtype: DType, numel: number): number {
  return dtype === 'f16' || dtype === 'bf16' ? Math.ceil(numel / 2) * 4 : numel * 4;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** f32 -> IEEE half bits, round to nearest even (handles subnormals, inf, nan). */
export function f32ToF16Bits(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let m = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    if (rem > half || (rem === half && (m & 1))) m++;
    return sign | m;
  }
  let m = mant >>> 13;
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (m & 1))) {
    m++;
    if (m === 0x400) {
      m = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | m;
}

/** IEEE half bits -> f32 value. */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** f32 -> bfloat16 bits, round to nearest even (as torch's `.to(torch.bfloat16)`). */
export function f32ToBf16Bits(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0];
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff)) return (x >>> 16) | 0x40;
  const rounded = x + 0x7fff + ((x >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

/** bfloat16 bits -> f32 value. */
export function bf16BitsToF32(b: number): number {
  u32Scratch[0] = (b & 0xffff) << 16;
  return f32Scratch[0];
}

/** Packs f32 values into half bits, two per u32 (low half first). */
export function packHalf(values: ArrayLike<number>, dtype: 'f16' | 'bf16'): Uint32Array {
  const out = new Uint32Array(Math.ceil(values.length / 2));
  const conv = dtype === 'f16' ? f32ToF16Bits : f32ToBf16Bits;
  for (let i = 0; i < values.length; i++) {
    const bits = conv(values[i]);
    out[i >> 1] |= i & 1 ? bits << 16 : bits;
  }
  return out;
}

/** Unpacks `numel` half values (two per u32, low half first) to f32. */
export function unpackHalf(words: Uint32Array, dtype: 'f16' | 'bf16', numel: number): Float32Array {
  const out = new Float32Array(numel);
  const conv = dtype === 'f16' ? f16BitsToF32 : bf16BitsToF32;
  for (let i = 0; i < numel; i++) out[i] = conv((words[i >> 1] >>> ((i & 1) * 16)) & 0xffff);
  return out;
}

/** Rounds each value through the half dtype (what a packed tensor holds after upload). */
export function roundThrough(values: ArrayLike<number>, dtype: DType): Float32Array {
  const out = Float32Array.from(values);
  if (dtype === 'f16') for (let i = 0; i < out.length; i++) out[i] = f16BitsToF32(f32ToF16Bits(out[i]));
  else if (dtype === 'bf16') for (let i = 0; i < out.length; i++) out[i] = bf16BitsToF32(f32ToBf16Bits(out[i]));
  return out;
}
