import source from '../../shaders/rvq.wgsl?raw';
import { Kernel, ParamsLayout, type Recorder, ShapeError, type Tensor, expectShape, grid1d, storageBindings } from '../gpu/index.ts';

const BINDINGS = storageBindings({ x: 'read', cb: 'read', codes: 'read_write', y: 'read_write' });

const PARAMS = new ParamsLayout([
  ['frames', 'u32'],
  ['dim', 'u32'],
  ['bins', 'u32'],
  ['layers', 'u32'],
  ['code_row0', 'u32'],
  ['code_stride', 'u32'],
  ['code_col0', 'u32'],
  ['accumulate', 'u32'],
]);

/** Residual nearest-centroid search, shaders/rvq.wgsl `encode`. */
export const rvqEncodeKernel = new Kernel('rvq.encode', source, BINDINGS, PARAMS, 'encode');
/** Codebook lookup and sum, shaders/rvq.wgsl `decode`. */
export const rvqDecodeKernel = new Kernel('rvq.decode', source, BINDINGS, PARAMS, 'decode');

/** Largest codebook dimension the encode kernel holds in workgroup memory (const MAXD in the WGSL). */
export const RVQ_MAX_DIM = 1024;
const ENCODE_WG = 128;

/** Where a block of codes sits inside a codes tensor [rows, cols] (codebook-major). */
export interface CodePlacement {
  /** First codebook row written/read (default 0). */
  row0?: number;
  /** First frame column (default 0). */
  col0?: number;
}

function checkPlacement(what: string, codes: Tensor, layers: number, frames: number, at: CodePlacement): { row0: number; col0: number; stride: number } {
  expectShape(what, codes, [-1, -1], ['i32']);
  const row0 = at.row0 ?? 0;
  const col0 = at.col0 ?? 0;
  const [rows, cols] = codes.shape;
  if (row0 + layers > rows || col0 + frames > cols) {
    throw new ShapeError(`${what} '${codes.label}' [${rows}, ${cols}] cannot hold ${layers} codebooks × ${frames} frames at row ${row0}, column ${col0}`);
  }
  return { row0, col0, stride: cols };
}

/**
 * Residual VQ encode (core_vq.py ResidualVectorQuantization.encode with EuclideanCodebook._quantize:
 * argmin of the Euclidean distance, ties to the lowest index as torch.argmin; residual -= centroid).
 * - x: f32 [F, D] (the input projection's output, time-major); cb: f32 [L, bins, D] centroids
 * - codes: i32 [rows, cols]; writes codes[row0 + q, col0 + f] for q < L, f < F
 * - y: f32 [F, D] receives Σ_q centroid (the quantized vector before the output projection)
 * Throws ShapeError for mismatched shapes, D > 1024, or a codes block that does not fit.
 */
export function rvqEncode(rec: Recorder, x: Tensor, cb: Tensor, codes: Tensor, y: Tensor, at: CodePlacement = {}): void {
  expectShape('rvq codebooks', cb, [-1, -1, -1], ['f32']);
  const [L, bins, D] = cb.shape;
  expectShape('rvq encode input', x, [-1, D], ['f32']);
  const F = x.shape[0];
  expectShape('rvq encode quantized output', y, [F, D], ['f32']);
  if (D > RVQ_MAX_DIM) throw new ShapeError(`rvq codebooks '${cb.label}': dimension ${D} exceeds ${RVQ_MAX_DIM}`);
  if (bins < 1 || L < 1) throw new ShapeError(`rvq codebooks '${cb.label}' are empty: [${cb.shape.join(', ')}]`);
  const p = checkPlacement('rvq encode codes', codes, L, F, at);
  if (x.buffer === y.buffer) throw new ShapeError(`rvq encode: input '${x.label}' and output '${y.label}' share a buffer`);
  rec.dispatch(rvqEncodeKernel, {
    buffers: [x, cb, codes, y],
    params: { frames: F, dim: D, bins, layers: L, code_row0: p.row0, code_stride: p.stride, code_col0: p.col0, accumulate: 0 },
    constants: { WG: ENCODE_WG },
    workgroups: grid1d(F, 1),
    label: 'rvq.encode',
  });
}

/**
 * Residual VQ decode (core_vq.py ResidualVectorQuantization.decode: Σ_q embedding lookup over the
 * layers the codes give, `for i, layer_codes in enumerate(codes): layer = self.layers[i]`,
 * starting from zero, or from `init` when given).
 * - codes: i32 [rows, cols], reads codes[row0 + q, col0 + f] for q < layers, f < F (values clamped to [0, bins))
 * - cb: f32 [L, bins, D]; init: f32 [F, D] | null; y: f32 [F, D]
 * - layers: how many codebooks to sum, 1 ≤ layers ≤ L (default L): the first `layers` of cb
 * Throws ShapeError for mismatched shapes, a layer count outside [1, L] or a codes block out of range.
 */
export function rvqDecode(rec: Recorder, codes: Tensor, cb: Tensor, init: Tensor | null, y: Tensor, frames: number, at: CodePlacement = {}, layers?: number): void {
  expectShape('rvq codebooks', cb, [-1, -1, -1], ['f32']);
  const [L0, bins, D] = cb.shape;
  const L = layers ?? L0;
  if (!Number.isInteger(L) || L < 1 || L > L0) throw new ShapeError(`rvq decode: ${L} codebooks asked of '${cb.label}', which holds ${L0}`);
  expectShape('rvq decode output', y, [frames, D], ['f32']);
  if (init) expectShape('rvq decode initial sum', init, [frames, D], ['f32']);
  const p = checkPlacement('rvq decode codes', codes, L, frames, at);
  if (init && init.buffer === y.buffer) throw new ShapeError(`rvq decode: initial sum '${init.label}' and output '${y.label}' share a buffer`);
  rec.dispatch(rvqDecodeKernel, {
    buffers: [init ?? cb, cb, codes, y],
    params: { frames, dim: D, bins, layers: L, code_row0: p.row0, code_stride: p.stride, code_col0: p.col0, accumulate: init ? 1 : 0 },
    workgroups: grid1d(frames * D, 64),
    label: 'rvq.decode',
  });
}
