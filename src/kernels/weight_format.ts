/**
 * The weight formats kernels read (shaders/weight_formats.wgsl): the WGSL helpers prepended to the
 * shaders that read weights, and, for one weight tensor, the override constants and the three
 * buffers (`w`, `wscale`, `wbias`) to bind.
 */
import weightFormatsSource from '../../shaders/weight_formats.wgsl?raw';
import { type DType, QuantizedTensor, ShapeError, type Tensor, type WeightTensor } from '../gpu/index.ts';

/** shaders/weight_formats.wgsl: prepend to a shader declaring `w`, `wscale`, `wbias`. */
export const WEIGHT_FORMATS_WGSL = weightFormatsSource;

const PLAIN_CODE: Partial<Record<DType, number>> = { f32: 0, f16: 1, bf16: 2 };

/** Plain (unquantized) weight dtypes every weight-reading kernel accepts. */
export const PLAIN_WEIGHT_DTYPES: readonly DType[] = ['f32', 'f16', 'bf16'];

/** Override constants DTYPE, BITS, GS of shaders/weight_formats.wgsl for `w`. */
export function weightConstants(w: WeightTensor): { DTYPE: number; BITS: number; GS: number } {
  if (w instanceof QuantizedTensor) {
    return w.format === 'q8' ? { DTYPE: 3, BITS: 8, GS: 32 } : { DTYPE: 4, BITS: w.bits, GS: w.groupSize };
  }
  const code = PLAIN_CODE[w.dtype];
  if (code === undefined) throw new ShapeError(`weight '${w.label}' has dtype ${w.dtype}; kernels read f32, f16, bf16 or quantized weights`);
  return { DTYPE: code, BITS: 4, GS: 32 };
}

/** The buffers bound as `w`, `wscale`, `wbias` (a plain weight is bound three times; only `w` is read). */
export function weightBuffers(w: WeightTensor): [Tensor, Tensor, Tensor] {
  if (w instanceof QuantizedTensor) return [w.q, w.scales, w.biases ?? w.scales];
  return [w, w, w];
}

/** A label suffix naming the format ('bf16', 'q8', 'q4g32'). */
export function weightFormatTag(w: WeightTensor): string {
  if (w instanceof QuantizedTensor) return w.format === 'q8' ? 'q8' : `q${w.bits}g${w.groupSize}`;
  return w.dtype;
}

/** Throws ShapeError unless `w` is a rank-2 weight of a readable format. Returns [rows, cols]. */
export function expectWeight(what: string, w: WeightTensor): [number, number] {
  if (w instanceof QuantizedTensor) return [w.shape[0], w.shape[1]];
  if (w.rank !== 2 || !PLAIN_WEIGHT_DTYPES.includes(w.dtype)) {
    throw new ShapeError(`${what} '${w.label}' must be a [rows, cols] f32 | f16 | bf16 | quantized tensor, got ${w.dtype}[${w.shape.join(', ')}]`);
  }
  return [w.shape[0], w.shape[1]];
}
