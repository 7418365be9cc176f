import geluSource from '../../shaders/gelu.wgsl?raw';
import unarySource from '../../shaders/unary.wgsl?raw';
import { type Recorder, Kernel, ParamsLayout, type Tensor, expectShape, grid1d, storageBindings } from '../gpu/index.ts';

/** Activations of shaders/unary.wgsl, by their override constant OP. */
export const UNARY_OPS = { elu: 0, gelu: 1, silu: 2 } as const;
export type UnaryOp = keyof typeof UNARY_OPS;

const WG = 64;
export const unaryKernel = new Kernel('unary', `${geluSource}\n${unarySource}`, storageBindings({ x: 'read', y: 'read_write' }), new ParamsLayout([['n', 'u32']]));

/**
 * y = op(x) elementwise, f32. ELU (torch.nn.ELU, alpha 1), exact-erf GELU (torch F.gelu default),
 * SiLU. x and y: any shape, same element count, f32, distinct buffers (WebGPU forbids a read and a writable binding of one range).
 * Throws ShapeError when the sizes or dtypes differ.
 */
export function unary(rec: Recorder, op: UnaryOp, x: Tensor, y: Tensor): void {
  expectShape('unary input', x, x.shape, ['f32']);
  expectShape(`unary ${op} output`, y, y.shape, ['f32']);
  if (x.numel !== y.numel) expectShape(`unary ${op} output`, y, x.shape);
  rec.dispatch(unaryKernel, {
    buffers: [x, y],
    params: { n: x.numel },
    constants: { OP: UNARY_OPS[op], WG },
    workgroups: grid1d(x.numel, WG),
    label: `unary.${op}`,
  });
}
