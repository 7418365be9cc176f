import source from '../../shaders/norm.wgsl?raw';
import { Kernel, ParamsLayout, type Recorder, ShapeError, type Tensor, expectShape, grid1d, storageBindings } from '../gpu/index.ts';

/** Threads per row: a power of two in [32, 256], about the row length (a short row wastes no threads). */
function wgFor(n: number): number {
  return Math.min(256, Math.max(32, 2 ** Math.ceil(Math.log2(Math.max(n, 1)))));
}
export const normKernel = new Kernel('norm', source, storageBindings({ x: 'read', w: 'read', b: 'read', y: 'read_write' }), new ParamsLayout([['m', 'u32'], ['d', 'u32'], ['eps', 'f32']]));

/** Rows M and width D of a [..., D] f32 tensor (D = last dim). */
function rowsOf(what: string, x: Tensor): [number, number] {
  if (x.rank < 1) throw new ShapeError(`${what} '${x.label}' must have rank ≥ 1, got a scalar`);
  expectShape(what, x, x.shape, ['f32']);
  const d = x.shape[x.rank - 1];
  return [d === 0 ? 0 : x.numel / d, d];
}

function checkOut(what: string, x: Tensor, y: Tensor): void {
  expectShape(what, y, x.shape, ['f32']);
  if (x.buffer === y.buffer) throw new ShapeError(`${what}: input '${x.label}' and output '${y.label}' share a buffer; use distinct tensors`);
}

/**
 * LayerNorm over the last dim (torch.nn.LayerNorm with elementwise affine, as built by
 * moshi/modules/transformer.py `create_norm_fn('layer_norm')`, eps 1e-5):
 * y = (x - mean) / sqrt(var + eps) · weight + bias, biased variance, f32.
 * x, y: [..., D] f32 (same shape, distinct buffers); weight, bias: [D] f32.
 * Throws ShapeError on a shape or dtype mismatch.
 */
export function layerNorm(rec: Recorder, x: Tensor, weight: Tensor, bias: Tensor, y: Tensor, eps: number): void {
  const [m, d] = rowsOf('layerNorm input', x);
  checkOut('layerNorm output', x, y);
  expectShape('layerNorm weight', weight, [d], ['f32']);
  expectShape('layerNorm bias', bias, [d], ['f32']);
  if (m === 0 || d === 0) return;
  rec.dispatch(normKernel, {
    buffers: [x, weight, bias, y],
    params: { m, d, eps },
    constants: { OP: 0, WG: wgFor(d) },
    workgroups: grid1d(m, 1),
    label: 'norm.layer_norm',
  });
}

/**
 * RMSNorm as the official `RMSNorm` (moshi/modules/transformer.py `_rms_norm`; 'rms_norm_f32'
 * computes in f32): y = x · (alpha · 1/sqrt(eps + mean(x²))). eps: 1e-5 for 'rms_norm', 1e-8 for
 * 'rms_norm_f32'. x, y: [..., D] f32 (same shape, distinct buffers); alpha: f32 of any shape with
 * D elements (the checkpoint stores [1, 1, D]). Throws ShapeError on a shape or dtype mismatch.
 */
export function rmsNorm(rec: Recorder, x: Tensor, alpha: Tensor, y: Tensor, eps: number): void {
  const [m, d] = rowsOf('rmsNorm input', x);
  checkOut('rmsNorm output', x, y);
  expectShape('rmsNorm alpha', alpha, alpha.shape, ['f32']);
  if (alpha.numel !== d) throw new ShapeError(`rmsNorm alpha '${alpha.label}' must have ${d} elements (the last dim of '${x.label}'), got shape [${alpha.shape.join(', ')}]`);
  if (m === 0 || d === 0) return;
  rec.dispatch(normKernel, {
    buffers: [x, alpha, alpha, y],
    params: { m, d, eps },
    constants: { OP: 1, WG: wgFor(d) },
    workgroups: grid1d(m, 1),
    label: 'norm.rms_norm',
  });
}
