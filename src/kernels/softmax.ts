import source from '../../shaders/softmax.wgsl?raw';
import { Kernel, ParamsLayout, type Recorder, ShapeError, type Tensor, expectShape, grid1d } from '../gpu/index.ts';

/** Threads per row: a power of two in [32, 256], about the row length (a short row wastes no threads). */
function wgFor(n: number): number {
  return Math.min(256, Math.max(32, 2 ** Math.ceil(Math.log2(Math.max(n, 1)))));
}
export const softmaxKernel = new Kernel('softmax', source, [
  { name: 'x', access: 'read' },
  { name: 'y', access: 'read_write' },
], new ParamsLayout([['m', 'u32'], ['n', 'u32']]));

/**
 * Row-wise softmax over the last dim (torch.softmax(x, dim=-1)), max-subtracted, f32.
 * x, y: [..., N] f32 with the same shape, distinct buffers (M = numel / N rows).
 * Throws ShapeError on a shape or dtype mismatch.
 */
export function softmax(rec: Recorder, x: Tensor, y: Tensor): void {
  if (x.rank < 1) throw new ShapeError(`softmax input '${x.label}' must have rank ≥ 1, got a scalar`);
  expectShape('softmax input', x, x.shape, ['f32']);
  expectShape('softmax output', y, x.shape, ['f32']);
  if (x.buffer === y.buffer) throw new ShapeError(`softmax: input '${x.label}' and output '${y.label}' share a buffer; use distinct tensors`);
  const n = x.shape[x.rank - 1];
  if (n === 0 || x.numel === 0) return;
  const m = x.numel / n;
  rec.dispatch(softmaxKernel, {
    buffers: [x, y],
    params: { m, n },
    constants: { WG: wgFor(n) },
    workgroups: grid1d(m, 1),
    label: 'softmax',
  });
}
