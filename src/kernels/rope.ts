import ropeSource from '../../shaders/rope.wgsl?raw';
import sincosSource from '../../shaders/sincos.wgsl?raw';
import { type GpuContext, Kernel, ParamsLayout, type Recorder, ShapeError, type Tensor, expectShape, grid1d, storageBindings } from '../gpu/index.ts';

const WG = 64;
export const ropeKernel = new Kernel('rope', `${sincosSource}\n${ropeSource}`, storageBindings({ x: 'read_write', freqs: 'read' }), new ParamsLayout([['rows', 'u32'], ['row_stride', 'u32'], ['heads', 'u32'], ['head_dim', 'u32'], ['offset', 'u32']]));

/**
 * RoPE frequencies of moshi/modules/rope.py `apply_rope`, computed as torch does in f32:
 * freqs[i] = exp(f32(i) · f32(-ln(maxPeriod) · 2 / headDim)), i < headDim/2. Returns [headDim/2].
 * Throws ShapeError when headDim is odd.
 */
export function ropeFreqs(headDim: number, maxPeriod: number): Float32Array {
  if (headDim % 2 !== 0 || headDim <= 0) throw new ShapeError(`RoPE needs an even head_dim, got ${headDim}`);
  if (!(maxPeriod > 0)) throw new ShapeError(`RoPE max_period must be positive, got ${maxPeriod}`);
  const c = Math.fround((-Math.log(maxPeriod) * 2) / headDim);
  return Float32Array.from({ length: headDim / 2 }, (_, i) => Math.fround(Math.exp(Math.fround(i * c))));
}

const freqCache = new WeakMap<GpuContext, Map<string, Tensor>>();

/** The frequency table of `ropeFreqs` on the GPU, uploaded once per (context, headDim, maxPeriod). */
export function ropeFreqsTensor(ctx: GpuContext, headDim: number, maxPeriod: number): Tensor {
  let m = freqCache.get(ctx);
  if (!m) freqCache.set(ctx, (m = new Map()));
  const key = `${headDim}|${maxPeriod}`;
  let t = m.get(key);
  if (!t) m.set(key, (t = ctx.upload(ropeFreqs(headDim, maxPeriod), [headDim / 2], 'f32', `rope.freqs[${key}]`)));
  return t;
}

/**
 * Rotary position embedding in place, interleaved pairs (moshi/modules/rope.py `apply_rope`,
 * interleave=True, the layout of `RotaryEmbedding` in StreamingTransformer for 'rope'):
 * row t of x: [T, W] f32 holds `heads` heads of `headDim` values from column 0 (W ≥ heads·headDim;
 * e.g. q and k of a fused in_proj output [T, 3D] are 2·H heads), each rotated at absolute position
 * `offset + t`. freqs: [headDim/2] f32 from `ropeFreqsTensor`. Throws ShapeError on bad shapes.
 */
export function rope(rec: Recorder, x: Tensor, freqs: Tensor, o: { heads: number; headDim: number; offset: number }): void {
  expectShape('rope input', x, [-1, -1], ['f32']);
  const { heads, headDim, offset } = o;
  if (headDim % 2 !== 0) throw new ShapeError(`rope: head_dim must be even, got ${headDim}`);
  expectShape('rope freqs', freqs, [headDim / 2], ['f32']);
  const [rows, width] = x.shape;
  if (heads * headDim > width) throw new ShapeError(`rope: ${heads} heads of ${headDim} do not fit rows of ${width} in '${x.label}'`);
  if (!Number.isInteger(offset) || offset < 0) throw new ShapeError(`rope: offset must be a non-negative integer, got ${offset}`);
  const n = rows * heads * (headDim / 2);
  if (n === 0) return;
  rec.dispatch(ropeKernel, {
    buffers: [x, freqs],
    params: { rows, row_stride: width, heads, head_dim: headDim, offset },
    constants: { WG },
    workgroups: grid1d(n, WG),
    label: 'rope',
  });
}
