import source from '../../shaders/peak_fma.wgsl?raw';
import { type Recorder, Kernel, ParamsLayout, type Tensor, expectShape, grid1d, storageBindings } from '../gpu/index.ts';

const WG = 64;
/** Independent f32 FMA chains per thread in shaders/peak_fma.wgsl (four vec4 accumulators). */
export const PEAK_FMA_CHAINS = 16;
const M = 0.999;
const C = 0.001;

export const peakFmaKernel = new Kernel('peak_fma', source, storageBindings({ y: 'read_write' }), new ParamsLayout([['n', 'u32'], ['iters', 'u32']]));

/**
 * Records the peak-compute probe: y.numel threads, each running `iters` rounds of 16 independent
 * f32 FMA chains (shaders/peak_fma.wgsl) and writing one f32. FLOPs of one dispatch:
 * `peakFmaFlops(y.numel, iters)`. y: f32, any shape.
 * @throws ShapeError for a non-f32 y
 */
export function peakFma(rec: Recorder, y: Tensor, iters: number): void {
  expectShape('peak_fma output', y, y.shape, ['f32']);
  rec.dispatch(peakFmaKernel, {
    buffers: [y],
    params: { n: y.numel, iters },
    constants: { WG },
    workgroups: grid1d(y.numel, WG),
    label: 'peak_fma',
  });
}

/** Floating-point operations (an FMA counts as 2) of `threads` threads × `iters` rounds. */
export function peakFmaFlops(threads: number, iters: number): number {
  return 2 * PEAK_FMA_CHAINS * iters * threads;
}

/**
 * Absolute tolerance of an output against peakFmaRef: each f32 chain settles within about
 * ulp(2) / (1 - M) ≈ 2.4e-4 of the exact recurrence (rounding per round, contracted by M), and
 * an output sums 16 chains.
 */
export const PEAK_FMA_ATOL = 4e-3;

/** CPU reference of thread t's output (f64 arithmetic; the GPU's f32 stays within ~1e-5 of it). */
export function peakFmaRef(t: number, iters: number): number {
  const x0 = (t % 1024) / 1024;
  let sum = 0;
  for (let j = 0; j < PEAK_FMA_CHAINS; j++) {
    // Chain j starts at x0 + j/8 (a0 lanes 0..3 = +0, .125, .25, .375; a1 = a0 + .5; ...).
    const start = x0 + j / 8;
    // a_n = 1 + (a_0 - 1) · M^n (fixed point C / (1 - M) = 1).
    sum += 1 + (start - 1) * M ** iters;
  }
  return sum;
}
