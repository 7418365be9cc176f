/**
 * Finiteness of stored float weights, checked on the host while they are uploaded: a NaN or an
 * infinity in a checkpoint would silently turn every code and token into garbage.
 */
import type { SafeDType } from './safetensors.ts';

/**
 * Index of the first NaN or ±Inf element of little-endian `bytes` holding `dtype` values
 * (F32, F16, BF16, F64), or -1 when all are finite (and for non-float dtypes). F64 values are
 * narrowed to f32 on upload, so an F64 value beyond the f32 range (|x| > 3.4e38, e.g. 1e300:
 * finite as F64, ±Inf as f32) counts as non-finite too.
 */
export function firstNonFinite(bytes: Uint8Array, dtype: SafeDType): number {
  if (dtype === 'F32' || dtype === 'F16' || dtype === 'BF16') {
    const elem = dtype === 'F32' ? 4 : 2;
    const n = Math.floor(bytes.byteLength / elem);
    const aligned = bytes.byteOffset % elem === 0 ? bytes : bytes.slice();
    if (dtype === 'F32') {
      const u = new Uint32Array(aligned.buffer, aligned.byteOffset, n);
      for (let i = 0; i < n; i++) if ((u[i] & 0x7f800000) === 0x7f800000) return i;
      return -1;
    }
    const mask = dtype === 'F16' ? 0x7c00 : 0x7f80;
    const u = new Uint16Array(aligned.buffer, aligned.byteOffset, n);
    for (let i = 0; i < n; i++) if ((u[i] & mask) === mask) return i;
    return -1;
  }
  if (dtype === 'F64') {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < bytes.byteLength / 8; i++) if (!Number.isFinite(Math.fround(dv.getFloat64(8 * i, true)))) return i;
  }
  return -1;
}
