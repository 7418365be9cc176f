import source from '../../shaders/elementwise.wgsl?raw';
import { Kernel, ParamsLayout, type Recorder, ShapeError, type Tensor, expectShape, grid1d, storageBindings } from '../gpu/index.ts';

const WG = 64;
/** Operations of shaders/elementwise.wgsl, by their override constant OP. */
const OPS = { add: 0, add_scaled: 1, gated_silu: 2, transpose: 3 } as const;

export const elementwiseKernel = new Kernel('elementwise', source, storageBindings({ y: 'read_write', a: 'read', b: 'read' }), new ParamsLayout([['n', 'u32'], ['rows', 'u32'], ['cols', 'u32']]));

function distinct(what: string, y: Tensor, ...xs: Tensor[]): void {
  for (const x of xs) {
    if (x.buffer === y.buffer) throw new ShapeError(`${what}: output '${y.label}' and input '${x.label}' share a buffer; use distinct tensors`);
  }
}

function run(rec: Recorder, op: keyof typeof OPS, y: Tensor, a: Tensor, b: Tensor, rows: number, cols: number): void {
  const n = y.numel;
  if (n === 0) return;
  rec.dispatch(elementwiseKernel, {
    buffers: [y, a, b],
    params: { n, rows, cols },
    constants: { OP: OPS[op], WG },
    workgroups: grid1d(n, WG),
    label: `elementwise.${op}`,
  });
}

/** y += b elementwise, f32. y and b: any shapes with the same element count, distinct buffers. Throws ShapeError otherwise. */
export function addInPlace(rec: Recorder, y: Tensor, b: Tensor): void {
  expectShape('addInPlace target', y, y.shape, ['f32']);
  expectShape('addInPlace operand', b, b.shape, ['f32']);
  if (b.numel !== y.numel) expectShape('addInPlace operand', b, y.shape);
  distinct('addInPlace', y, b);
  run(rec, 'add', y, b, b, 1, 1);
}

/**
 * y += scale ⊙ b with scale broadcast over rows: the LayerScale residual
 * `x + layer_scale(update)` of moshi/modules/transformer.py `StreamingTransformerLayer`
 * (`LayerScale.forward`, channel_last). y, b: [M, D] f32 (or any [..., D]); scale: [D] f32.
 * Throws ShapeError on a shape or dtype mismatch or when y shares a buffer with b or scale.
 */
export function addScaledInPlace(rec: Recorder, y: Tensor, b: Tensor, scale: Tensor): void {
  if (y.rank < 1) throw new ShapeError(`addScaledInPlace target '${y.label}' must have rank ≥ 1`);
  expectShape('addScaledInPlace target', y, y.shape, ['f32']);
  expectShape('addScaledInPlace operand', b, y.shape, ['f32']);
  const d = y.shape[y.rank - 1];
  expectShape('addScaledInPlace scale', scale, [d], ['f32']);
  distinct('addScaledInPlace', y, b, scale);
  run(rec, 'add_scaled', y, b, scale, y.numel / Math.max(d, 1), d);
}

/**
 * Gated SiLU of moshi/modules/gating.py `ActivationGating` (activation 'silu'):
 * y[m, j] = silu(h[m, j]) · h[m, H + j], the first half of each row gated by the second.
 * h: [M, 2H] f32; y: [M, H] f32, distinct buffers. Throws ShapeError on a shape or dtype mismatch.
 */
export function gatedSilu(rec: Recorder, h: Tensor, y: Tensor): void {
  expectShape('gatedSilu input', h, [-1, -1], ['f32']);
  const [m, h2] = h.shape;
  if (h2 % 2 !== 0) throw new ShapeError(`gatedSilu input '${h.label}' must have an even last dim (2·H), got [${h.shape.join(', ')}]`);
  expectShape('gatedSilu output', y, [m, h2 / 2], ['f32']);
  distinct('gatedSilu', y, h);
  run(rec, 'gated_silu', y, h, h, m, h2 / 2);
}

/**
 * 2-D transpose, f32: y[c, r] = x[r, c] (conv layout [C, T] <-> [T, C], as the
 * `x.transpose(1, 2)` of moshi/modules/transformer.py `ProjectedTransformer` with conv_layout).
 * x: [R, C]; y: [C, R], distinct buffers. Throws ShapeError on a shape or dtype mismatch.
 */
export function transpose2d(rec: Recorder, x: Tensor, y: Tensor): void {
  expectShape('transpose2d input', x, [-1, -1], ['f32']);
  const [r, c] = x.shape;
  expectShape('transpose2d output', y, [c, r], ['f32']);
  distinct('transpose2d', y, x);
  run(rec, 'transpose', y, x, x, r, c);
}
