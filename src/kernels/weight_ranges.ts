/**
 * Row ranges of a weight matrix too large for one storage binding (the 7B's bf16 `text_emb` and
 * `text_linear` are 262 MB each, the default maxStorageBufferBindingSize is 128 MiB): the buffer
 * is allocated whole (up to maxBufferSize) and each range is bound as an offset/size window of it.
 * linear (M = 1) and embedding dispatch once per range. A window starts on a 256-byte boundary
 * (minStorageBufferOffsetAlignment) in every buffer it reads, so ranges are whole rows at
 * multiples of a step that keeps each component's row offset aligned.
 */
import { type GpuContext, QuantizedTensor, ShapeError, Tensor, type WeightTensor } from '../gpu/index.ts';

/** A view of rows [row0, row0 + rows) of `w` (no copy). */
export interface WeightRange {
  row0: number;
  rows: number;
  w: WeightTensor;
}

const ALIGN = 256;
const gcd = (a: number, b: number): number => (b ? gcd(b, a % b) : a);
const lcm = (a: number, b: number) => (a / gcd(a, b)) * b;

/** Bytes of one row of each buffer of `w` (packed values, scales, biases). */
function rowBytesOf(w: WeightTensor): number[] {
  const [n, k] = w.shape;
  if (w instanceof QuantizedTensor) {
    const q = w.format === 'q8' ? k : (k * w.bits) / 8;
    const s = w.format === 'q8' ? 4 : 2 * (k / w.groupSize);
    return w.biases ? [q, s, s] : [q, s];
  }
  void n;
  return [elementBytes(w) * k];
}

/** Bytes per element of a plain weight (halves are packed two per word). */
function elementBytes(w: Tensor): number {
  return w.dtype === 'f16' || w.dtype === 'bf16' ? 2 : 4;
}

/** Largest byte size among `w`'s buffers (what one binding would have to cover). */
export function largestBinding(w: WeightTensor): number {
  if (w instanceof QuantizedTensor) return Math.max(w.q.byteLength, w.scales.byteLength, w.biases?.byteLength ?? 0);
  return w.byteLength;
}

function view(t: Tensor, row0: number, rows: number, rowBytes: number, shape: number[]): Tensor {
  return new Tensor(t.buffer, shape, t.dtype, `${t.label}[${row0}:${row0 + rows}]`, t.byteOffset + row0 * rowBytes, false);
}

/**
 * `w` as row ranges each of whose buffers fits `ctx.bindingLimit`, or [whole] when it fits
 * already. `extraAlign` rows: a row step the caller's other bindings need (linear: 64, so that
 * the f32 output window y[row0:] starts on 256 bytes). Throws ShapeError when rows cannot be
 * aligned (e.g. half rows of odd length) or one step of rows exceeds the binding limit.
 */
export function weightRanges(ctx: GpuContext, w: WeightTensor, extraAlign = 1): WeightRange[] {
  const [n, k] = w.shape;
  if (largestBinding(w) <= ctx.bindingLimit) return [{ row0: 0, rows: n, w }];
  const rowBytes = rowBytesOf(w);
  let step = extraAlign;
  for (const b of rowBytes) {
    if (b <= 0) throw new ShapeError(`weight '${w.label}': empty rows cannot be bound in ranges`);
    step = lcm(step, ALIGN / gcd(b, ALIGN));
  }
  const perStep = Math.max(...rowBytes) * step;
  const steps = Math.floor(ctx.bindingLimit / perStep);
  if (steps < 1) {
    throw new ShapeError(`weight '${w.label}' [${n}, ${k}]: ${step} rows (the smallest aligned range) take ${perStep} bytes, over the ${ctx.bindingLimit} bytes one binding may cover`);
  }
  const chunk = steps * step;
  const out: WeightRange[] = [];
  for (let row0 = 0; row0 < n; row0 += chunk) {
    const rows = Math.min(chunk, n - row0);
    out.push({ row0, rows, w: rangeOf(w, row0, rows) });
  }
  return out;
}

function rangeOf(w: WeightTensor, row0: number, rows: number): WeightTensor {
  const [, k] = w.shape;
  if (!(w instanceof QuantizedTensor)) return view(w, row0, rows, elementBytes(w) * k, [rows, k]);
  if (w.format === 'q8') {
    if (k % 4 !== 0) throw new ShapeError(`q8 weight '${w.label}' with K = ${k} (not a multiple of 4) cannot be bound in row ranges`);
    const q = view(w.q, row0, rows, k, [(rows * k) / 4]);
    const s = view(w.scales, row0, rows, 4, [rows]);
    return new QuantizedTensor('q8', [rows, k], 8, k, q, s, null, `${w.label}[${row0}:${row0 + rows}]`);
  }
  const cols = (k * w.bits) / 32;
  const g = k / w.groupSize;
  const q = view(w.q, row0, rows, cols * 4, [rows, cols]);
  const s = view(w.scales, row0, rows, 2 * g, [rows, g]);
  const b = view(w.biases!, row0, rows, 2 * g, [rows, g]);
  return new QuantizedTensor('affine', [rows, k], w.bits, w.groupSize, q, s, b, `${w.label}[${row0}:${row0 + rows}]`);
}
