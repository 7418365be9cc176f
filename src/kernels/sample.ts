import sampleSource from '../../shaders/sample.wgsl?raw';
import nonfiniteSource from '../../shaders/nonfinite.wgsl?raw';
import { type GpuContext, type Recorder, Kernel, ParamsLayout, ShapeError, type Tensor, type WeightTensor, expectShape, storageBindings } from '../gpu/index.ts';
import { WEIGHT_FORMATS_WGSL, expectWeight, weightBuffers, weightConstants, weightFormatTag } from './weight_format.ts';
import { weightRanges } from './weight_ranges.ts';

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
/** sample.wgsl with the weight readers (shaders/weight_formats.wgsl, for the fused embedding) prepended and the shared is_nonfinite (shaders/nonfinite.wgsl) appended. */
export const sampleKernel = new Kernel('sample', `${WEIGHT_FORMATS_WGSL}\n${sampleSource}\n${nonfiniteSource}`, storageBindings({ logits: 'read', out: 'read_write', flags: 'read_write', w: 'read', wscale: 'read', wbias: 'read', emb_y: 'read_write' }), new ParamsLayout([
  ['v', 'u32'], ['rows', 'u32'], ['top_k', 'u32'], ['temp', 'f32'], ['seed', 'u32'], ['draw', 'u32'], ['logits_offset', 'u32'], ['out_offset', 'u32'], ['draws', 'u32'], ['check_bit', 'u32'],
  ['emb_d', 'u32'], ['emb_v', 'u32'], ['emb_offset', 'u32'],
]));

/**
 * The flag word bound when a sample call checks nothing (check_bit = 0: the kernel never touches
 * it). One 16-byte buffer per context, outside `liveBytes` (not a model tensor), freed with the device.
 */
const unusedWords = new WeakMap<GpuContext, Map<string, GPUBuffer>>();
function unusedWord(ctx: GpuContext, label: string): GPUBufferBinding {
  let m = unusedWords.get(ctx);
  if (!m) unusedWords.set(ctx, (m = new Map()));
  let b = m.get(label);
  if (!b) {
    b = ctx.device.createBuffer({ label, size: 16, usage: GPUBufferUsage.STORAGE });
    m.set(label, b);
  }
  return { buffer: b, offset: 0, size: 16 };
}
const unusedFlagWord = (ctx: GpuContext) => unusedWord(ctx, 'sample.unused_flags');
/** The `emb_y` word bound when a sample call embeds nothing (EMB 0: never touched); one per context, as the flag word. */
const unusedEmbWord = (ctx: GpuContext) => unusedWord(ctx, 'sample.unused_emb_y');

/** Whether `sample` can take `embed` with this table: bound whole (no row ranges). */
export function canFuseSampleEmbedding(rec: Recorder, table: WeightTensor): boolean {
  return rec.ctx.kernelChoice.fusion !== 'off' && weightRanges(rec.ctx, table).length === 1;
}

/** Largest top-k whose admitted logits the kernel compacts into workgroup memory (shaders/sample.wgsl KMAX). */
export const SAMPLE_KMAX = 256;

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
  /**
   * Tokens drawn per row (default 1): draw d of row r uses the random stream of draw index
   * `draw + d` and goes to out[outOffset + r * draws + d]. Many draws per dispatch let tests
   * measure the distribution while paying the top-k search once per row.
   */
  draws?: number;
  /**
   * Finiteness check folded into the sampling read (what src/kernels/finite.ts `finiteCheck`
   * does in a dispatch of its own): `bit` (one bit of a u32) is OR-ed into `flags[0]` (u32/i32)
   * when any logit is NaN or ±Infinity; flags is never cleared here. Tokens are unchanged by it.
   */
  check?: { flags: Tensor; bit: number };
  /**
   * The embedding of the drawn token fused after the draw (one row, one draw only; see
   * canFuseSampleEmbedding): y[yOffset + d] += table[token, d] for d < D, table [V, D] in any
   * weight format (nn.Embedding; an id outside [0, V) adds nothing, as `embedding`), y f32 with at
   * least yOffset + D elements. The depformer's `depformer_emb[k](token)` added to its next input.
   */
  embed?: { table: WeightTensor; y: Tensor; yOffset: number };
}

/**
 * Samples `draws` (default 1) tokens per row of `logits` [rows, V] f32 into `out` (i32, flat,
 * element outOffset + r * draws + d), on the GPU. Port of moshi/utils/sampling.py `sample_token`
 * with top_p = 0: greedy `argmax` when temp <= 0; otherwise softmax(logits / temp) restricted to
 * the top_k largest logits (`sample_top_k`; ties at the k-th value to the lowest indices), drawn
 * by the exponential race of `multinomial` (argmax p / E, E ~ Exp(1)). The random stream is a
 * counter-based hash of (seed, draw + d, row, index), not torch's: distributions match, the same
 * seed and draw repeat exactly. tests/kernels/sample.cases.ts checks the distribution against the
 * exact tempered top-k softmax (chi-square, ≥ 2^17 draws per case).
 * With `opts.check`, the same dispatch also ORs a finiteness bit into a flag word (finite_check's
 * work, no extra dispatch).
 * Throws ShapeError for a non-2D/non-f32 `logits`, a non-i32 `out`, an out-of-range outOffset,
 * a `draws` that is not a positive integer, or a check whose flags are not u32/i32 or whose bit is
 * not a single bit.
 */
export function sample(rec: Recorder, logits: Tensor, out: Tensor, opts: SampleOptions = {}): void {
  expectShape('sample logits', logits, [-1, -1], ['f32']);
  expectShape('sample out', out, out.shape, ['i32']);
  const [rows, v] = logits.shape;
  const outOffset = opts.outOffset ?? 0;
  const draws = opts.draws ?? 1;
  if (!Number.isInteger(draws) || draws < 1 || draws > 0x7fffffff) throw new ShapeError(`sample: draws must be a positive integer, got ${draws}`);
  if (!Number.isInteger(outOffset) || outOffset < 0 || outOffset + rows * draws > out.numel) {
    throw new ShapeError(`sample out '${out.label}' has ${out.numel} elements; rows ${rows} × draws ${draws} at offset ${outOffset} do not fit`);
  }
  if (v === 0) throw new ShapeError(`sample logits '${logits.label}' has an empty vocabulary`);
  const temp = opts.temp ?? 0;
  const topK = opts.topK ?? 0;
  if (!Number.isFinite(temp)) throw new ShapeError(`sample: temperature must be finite, got ${temp}`);
  if (!Number.isInteger(topK) || topK < 0) throw new ShapeError(`sample: topK must be a non-negative integer, got ${topK}`);
  const check = opts.check;
  if (check) {
    expectShape('sample check flags', check.flags, check.flags.shape, ['u32', 'i32']);
    const bit = check.bit;
    if (!Number.isInteger(bit) || bit <= 0 || bit > 0x80000000 || (bit & (bit - 1)) !== 0) throw new ShapeError(`sample: check bit must be one bit of a u32 (1, 2, 4, ...), got ${bit}`);
  }
  const embed = opts.embed;
  let embParams = { emb_d: 0, emb_v: 0, emb_offset: 0 };
  if (embed) {
    const [ev, ed] = expectWeight('sample embedding table', embed.table);
    expectShape('sample embedding output', embed.y, embed.y.shape, ['f32']);
    if (rows !== 1 || draws !== 1) throw new ShapeError(`sample: a fused embedding takes one row and one draw, got ${rows} rows × ${draws} draws`);
    if (!Number.isInteger(embed.yOffset) || embed.yOffset < 0 || embed.yOffset + ed > embed.y.numel) throw new ShapeError(`sample embedding output '${embed.y.label}' has ${embed.y.numel} elements; ${ed} at offset ${embed.yOffset} do not fit`);
    if (!canFuseSampleEmbedding(rec, embed.table)) throw new ShapeError(`sample: embedding table '${embed.table.label}' cannot be fused here (see canFuseSampleEmbedding); record embedding() after sampling`);
    embParams = { emb_d: ed, emb_v: ev, emb_offset: embed.yOffset };
  }
  rec.dispatch(sampleKernel, {
    buffers: [logits, out, check ? check.flags : unusedFlagWord(rec.ctx), ...(embed ? weightBuffers(embed.table) : [logits, logits, logits]), embed ? embed.y : unusedEmbWord(rec.ctx)],
    params: {
      v,
      rows,
      top_k: topK,
      temp: temp > 0 ? temp : 0,
      seed: (opts.seed ?? 0) >>> 0,
      draw: (opts.draw ?? 0) >>> 0,
      logits_offset: 0,
      out_offset: outOffset,
      draws,
      check_bit: check ? check.bit >>> 0 : 0,
      ...embParams,
    },
    constants: { WG: sampleWorkgroupSize(v), EMB: embed ? 1 : 0, ...(embed ? weightConstants(embed.table) : {}) },
    workgroups: [rows, 1, 1],
    label: `${temp > 0 ? 'sample.topk' : 'sample.argmax'}${check ? '+finite' : ''}${embed ? `+embedding.${weightFormatTag(embed.table)}` : ''}`,
  });
}
