import source from '../../shaders/sample.wgsl?raw';
import { type Recorder, Kernel, ParamsLayout, ShapeError, type Tensor, expectShape } from '../gpu/index.ts';

/**
 * Threads per row: enough that each owns a few logits, at most 256 (32 for V = 64, 256 from
 * V = 2048). Small workgroups matter most on CPU adapters (SwiftShader), where every barrier of
 * the reductions costs in proportion to the workgroup size. Always a power of two (tree reductions).
 */
export function sampleWorkgroupSize(v: number): number {
  let wg = 32;
  while (wg < 256 && wg * 8 < v) wg *= 2;
  return wg;
}
export const sampleKernel = new Kernel('sample', source, [
  { name: 'logits', access: 'read' },
  { name: 'out', access: 'read_write' },
], new ParamsLayout([
  ['v', 'u32'], ['rows', 'u32'], ['top_k', 'u32'], ['temp', 'f32'], ['seed', 'u32'], ['draw', 'u32'], ['logits_offset', 'u32'], ['out_offset', 'u32'],
]));

export interface SampleOptions {
  /** Temperature; <= 0 means greedy argmax (ties to the lowest index). Default 0. */
  temp?: number;
  /** Keep only the top_k largest logits before sampling; 0 = no restriction. Default 0. */
  topK?: number;
  /** RNG seed (u32). Default 0. */
  seed?: number;
  /** Draw counter (u32): one value per sampling call, so that calls are independent but repeatable. */
  draw?: number;
  /** Index in `out` where row 0's token goes. Default 0. */
  outOffset?: number;
}

/**
 * Samples one token per row of `logits` [rows, V] f32 into `out` (i32, flat, element
 * outOffset + r), on the GPU. Port of moshi/utils/sampling.py `sample_token` with top_p = 0:
 * greedy `argmax` when temp <= 0; otherwise softmax(logits / temp) restricted to the top_k
 * largest logits (`sample_top_k`), drawn by the exponential race of `multinomial` (argmax p / E,
 * E ~ Exp(1)). The random stream is a counter-based hash of (seed, draw, row, index), not torch's:
 * distributions match, the same seed and draw repeat exactly.
 * Throws ShapeError for a non-2D/non-f32 `logits`, a non-i32 `out` or an out-of-range outOffset.
 */
export function sample(rec: Recorder, logits: Tensor, out: Tensor, opts: SampleOptions = {}): void {
  expectShape('sample logits', logits, [-1, -1], ['f32']);
  expectShape('sample out', out, out.shape, ['i32']);
  const [rows, v] = logits.shape;
  const outOffset = opts.outOffset ?? 0;
  if (!Number.isInteger(outOffset) || outOffset < 0 || outOffset + rows > out.numel) {
    throw new ShapeError(`sample out '${out.label}' has ${out.numel} elements; rows ${rows} at offset ${outOffset} do not fit`);
  }
  if (v === 0) throw new ShapeError(`sample logits '${logits.label}' has an empty vocabulary`);
  const temp = opts.temp ?? 0;
  const topK = opts.topK ?? 0;
  if (!Number.isFinite(temp)) throw new ShapeError(`sample: temperature must be finite, got ${temp}`);
  if (!Number.isInteger(topK) || topK < 0) throw new ShapeError(`sample: topK must be a non-negative integer, got ${topK}`);
  rec.dispatch(sampleKernel, {
    buffers: [logits, out],
    params: {
      v,
      rows,
      top_k: topK,
      temp: temp > 0 ? temp : 0,
      seed: (opts.seed ?? 0) >>> 0,
      draw: (opts.draw ?? 0) >>> 0,
      logits_offset: 0,
      out_offset: outOffset,
    },
    constants: { WG: sampleWorkgroupSize(v) },
    workgroups: [rows, 1, 1],
    label: temp > 0 ? 'sample.topk' : 'sample.argmax',
  });
}
