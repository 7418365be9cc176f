import finiteSource from '../../shaders/finite.wgsl?raw';
import nonfiniteSource from '../../shaders/nonfinite.wgsl?raw';
import { type Recorder, Kernel, ParamsLayout, ShapeError, type Tensor, expectShape, grid1d, storageBindings } from '../gpu/index.ts';

const WG = 64;
const PER = 16;
/** finite.wgsl with the shared is_nonfinite (shaders/nonfinite.wgsl) appended. */
export const finiteKernel = new Kernel('finite_check', `${finiteSource}\n${nonfiniteSource}`, storageBindings({ x: 'read', flags: 'read_write' }), new ParamsLayout([['n', 'u32'], ['bit', 'u32']]));

/**
 * Records a finiteness check of `x` (f32, any shape): when any element is NaN or ±Infinity,
 * `bit` is OR-ed into `flags[0]` (u32 or i32, >= 1 element). The flag word is never cleared here:
 * clear it once (Recorder.clear) and let several checks OR their own bits into it, then read it
 * back with the step's other results (one readback). Cost: one read of x.
 * @throws ShapeError for a non-f32 `x`, a flags tensor that is not u32/i32, or a `bit` that is not
 *   a single bit of a u32
 */
export function finiteCheck(rec: Recorder, x: Tensor, flags: Tensor, bit: number): void {
  expectShape('finite_check input', x, x.shape, ['f32']);
  expectShape('finite_check flags', flags, flags.shape, ['u32', 'i32']);
  if (!Number.isInteger(bit) || bit <= 0 || bit > 0x80000000 || (bit & (bit - 1)) !== 0) throw new ShapeError(`finite_check: bit must be one bit of a u32 (1, 2, 4, ...), got ${bit}`);
  if (x.numel === 0) return;
  rec.dispatch(finiteKernel, {
    buffers: [x, flags],
    params: { n: x.numel, bit: bit >>> 0 },
    constants: { WG },
    workgroups: grid1d(Math.ceil(x.numel / PER), WG),
    label: 'finite_check',
  });
}
