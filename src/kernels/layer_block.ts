/**
 * Layer blocks (shaders/layer_block.wgsl): one transformer layer of one step in two dispatches,
 * the attention block (norm1 + in_proj + RoPE + cache write + attention + out_proj, one workgroup
 * per head) and the FFN block (norm2 + linear_in + gated SiLU + linear_out, one workgroup per
 * hidden slice), each leaving its second product as split-K partial sums that the next block adds
 * up in its prologue; `sumBlock` adds the last ones. Port of moshi/modules/transformer.py
 * `StreamingTransformerLayer` for T = 1 with RMSNorm, silu gating and a short ring cache
 * (`KVCache.rows`): the depformer, whose small matrices make its 8 × 6 sequential layer steps a
 * chain of dispatches rather than of bytes.
 *
 * The residual stream lives in a `BlockStream` buffer between the blocks: two halves of
 * (1 + maxParts) rows of D f32 (row 0 the residual, rows 1.. the partial sums); a block reads one
 * half and writes the other.
 */
import layerBlockSource from '../../shaders/layer_block.wgsl?raw';
import sincosSource from '../../shaders/sincos.wgsl?raw';
import { type GpuContext, Kernel, ParamsLayout, type Recorder, ShapeError, Tensor, type WeightTensor, expectShape, grid1d, storageBindings } from '../gpu/index.ts';
import type { KVCache } from './attention.ts';
import { WEIGHT_FORMATS_WGSL, expectWeight, weightBuffers, weightConstants, weightFormatTag } from './weight_format.ts';
import { weightRanges } from './weight_ranges.ts';

/** shaders/weight_formats.wgsl renamed for the second weight (`w2`, `w2scale`, `w2bias`, `weight2_at`). */
const WEIGHT2_WGSL = WEIGHT_FORMATS_WGSL.split('\n')
  .filter((l) => !/^override\s/.test(l) && !/^fn i8_value/.test(l))
  .join('\n')
  .replace(/\bwscale_bf16\b/g, 'w2scale_bf16')
  .replace(/\bwbias_bf16\b/g, 'w2bias_bf16')
  .replace(/\bweight_at\b/g, 'weight2_at')
  .replace(/\bw\[/g, 'w2[')
  .replace(/\bwscale\[/g, 'w2scale[')
  .replace(/\bwbias\[/g, 'w2bias[');

const SOURCE = `${WEIGHT_FORMATS_WGSL}\n${WEIGHT2_WGSL}\n${sincosSource}\n${layerBlockSource}`;
const BINDINGS = storageBindings({ st: 'read_write', w: 'read', wscale: 'read', wbias: 'read', w2: 'read', w2scale: 'read', w2bias: 'read', kv: 'read_write', vecs: 'read' });
const PARAMS = new ParamsLayout([
  ['d', 'u32'], ['head_dim', 'u32'], ['n_in', 'u32'], ['in_base', 'u32'], ['out_base', 'u32'], ['hidden', 'u32'], ['slice', 'u32'], ['eps', 'f32'],
  ['o_alpha', 'u32'], ['o_scale', 'u32'], ['o_freqs', 'u32'], ['offset', 'u32'], ['cap', 'u32'], ['context', 'u32'], ['scale', 'f32'], ['stride', 'u32'],
]);
export const attendBlockKernel = new Kernel('layer_block.attend', SOURCE, BINDINGS, PARAMS, 'attend_block');
export const ffnBlockKernel = new Kernel('layer_block.ffn', SOURCE, BINDINGS, PARAMS, 'ffn_block');
export const sumBlockKernel = new Kernel('layer_block.sum', SOURCE, BINDINGS, PARAMS, 'sum_block');

const WG = 64; // const WG in shaders/layer_block.wgsl
const LANES = 8; // const LANES
const NO_SCALE = 0xffffffff;
const NO_CONTEXT = 0xffffffff;
/** Storage buffers per dispatch (BINDINGS.length): the device must allow this many per stage. */
export const LAYER_BLOCK_STORAGE_BUFFERS = BINDINGS.length;

/** Hidden units per workgroup of the FFN block for hidden size H: about 64 workgroups, at least 4 units each. */
export function ffnSlice(hidden: number): number {
  return Math.max(4, Math.ceil(hidden / 64));
}

/** Partial-sum rows an attention block (heads) or FFN block (ceil(H / slice)) writes. */
export function blockParts(heads: number, hidden: number): number {
  return Math.max(heads, Math.ceil(hidden / ffnSlice(hidden)));
}

/** Workgroup bytes and override sizes of a block kernel (XS ≥ D, NR rows of the first product, NP ≥ slots / head_dim / slice). */
function workgroupSizes(d: number, nr: number, np: number): { bytes: number; XS: number; NR: number; NP: number } {
  const XS = d;
  const NR = Math.max(1, nr);
  const NP = Math.max(1, np);
  return { bytes: 4 * (XS + WG + NR * LANES + NR + 2 * NP + 2), XS, NR, NP };
}

/**
 * The residual stream between blocks: `st` [2, 1 + parts, D] f32 and the half the next block
 * reads (`from`) with its number of partial rows (`nIn`). Create one per transformer (it is scratch).
 */
export class BlockStream {
  readonly st: Tensor;
  /** Bound where a block reads no cache (`kv`, read_write) and where the sum reads no weights (read only). */
  readonly spareRw: Tensor;
  readonly spareRo: Tensor;
  from = 0;
  nIn = 0;
  constructor(ctx: GpuContext, readonly d: number, readonly parts: number, label: string) {
    this.st = ctx.tensor([2, 1 + parts, d], 'f32', label);
    this.spareRw = ctx.tensor([1], 'f32', `${label}.spare_rw`);
    this.spareRo = ctx.tensor([1], 'f32', `${label}.spare_ro`);
  }
  /** f32 offset of half `i` in `st`. */
  base(i: number): number {
    return i * (1 + this.parts) * this.d;
  }
  /** Row 0 (the residual) of half `i` as a [1, D] window. */
  residual(i: number): Tensor {
    return new Tensor(this.st.buffer, [1, this.d], 'f32', `${this.st.label}[${i}].residual`, this.st.byteOffset + 4 * this.base(i), false);
  }
  /** Starts a stream at x [1, D]: copies it into the residual of half 0, no partials. */
  start(rec: Recorder, x: Tensor): void {
    expectShape('layer block input', x, [1, this.d], ['f32']);
    rec.copy(x, this.residual(0), 4 * this.d);
    this.from = 0;
    this.nIn = 0;
  }
  destroy(): void {
    for (const t of [this.st, this.spareRw, this.spareRo]) t.destroy();
  }
}

/** The layer's small vectors in one f32 buffer (`vecs`) and their offsets in it. */
export interface BlockVectors {
  vecs: Tensor;
  alpha1: number;
  alpha2: number;
  /** LayerScale offsets, or null without LayerScale. */
  scale1: number | null;
  scale2: number | null;
  /** RoPE frequencies [head_dim / 2], or null without RoPE. */
  freqs: number | null;
}

/**
 * Copies a layer's RMSNorm alphas [D], LayerScales [D] and RoPE frequencies [head_dim / 2] into
 * one buffer on the GPU queue (submitted here, so ordered before any later step).
 */
export function blockVectors(ctx: GpuContext, parts: { alpha1: Tensor; alpha2: Tensor; scale1: Tensor | null; scale2: Tensor | null; freqs: Tensor | null }, label: string): BlockVectors {
  const list = [parts.alpha1, parts.alpha2, parts.scale1, parts.scale2, parts.freqs];
  const offsets: (number | null)[] = [];
  let n = 0;
  for (const t of list) {
    offsets.push(t ? n : null);
    if (t) {
      expectShape('layer block vector', t, t.shape, ['f32']);
      n += t.numel;
    }
  }
  const vecs = ctx.tensor([n], 'f32', label);
  const enc = ctx.device.createCommandEncoder({ label });
  list.forEach((t, i) => {
    if (t) enc.copyBufferToBuffer(t.buffer, t.byteOffset, vecs.buffer, vecs.byteOffset + 4 * (offsets[i] as number), 4 * t.numel);
  });
  ctx.device.queue.submit([enc.finish()]);
  return { vecs, alpha1: offsets[0] as number, alpha2: offsets[1] as number, scale1: offsets[2], scale2: offsets[3], freqs: offsets[4] };
}

function sameFormat(a: WeightTensor, b: WeightTensor): boolean {
  const x = weightConstants(a);
  const y = weightConstants(b);
  return x.DTYPE === y.DTYPE && x.BITS === y.BITS && x.GS === y.GS;
}

function boundWhole(ctx: GpuContext, w: WeightTensor): boolean {
  return weightRanges(ctx, w, 1).length === 1;
}

/**
 * Whether a layer of D = heads · head_dim with this cache and these weights can run as blocks on
 * this device: fusion not forced off, a cache keeping its qkv rows, in_proj [3D, D] with out_proj
 * [D, D] and linear_in [2H, D] with linear_out [D, H] each pair in one format and bound whole,
 * the workgroup memory and LAYER_BLOCK_STORAGE_BUFFERS within the device limits. The caller
 * (src/modules/transformer.ts) records the fused matvecs otherwise.
 */
export function canRunLayerBlocks(rec: Recorder, o: { cache: KVCache; inProj: WeightTensor; outProj: WeightTensor; wIn: WeightTensor; wOut: WeightTensor }): boolean {
  const ctx = rec.ctx;
  if (ctx.kernelChoice.fusion === 'off' || ctx.kernelChoice.layerBlocks === 'off' || !o.cache.rows) return false;
  const lim = ctx.device.limits;
  if (lim.maxStorageBuffersPerShaderStage < LAYER_BLOCK_STORAGE_BUFFERS) return false;
  const { cache } = o;
  const d = cache.numHeads * cache.headDim;
  const hid = o.wOut.shape[1];
  if (o.inProj.shape[0] !== 3 * d || o.inProj.shape[1] !== d || o.outProj.shape[0] !== d || o.outProj.shape[1] !== d) return false;
  if (o.wIn.shape[0] !== 2 * hid || o.wIn.shape[1] !== d || o.wOut.shape[0] !== d) return false;
  if (!sameFormat(o.inProj, o.outProj) || !sameFormat(o.wIn, o.wOut)) return false;
  if (![o.inProj, o.outProj, o.wIn, o.wOut].every((w) => boundWhole(ctx, w))) return false;
  const b = ffnSlice(hid);
  const att = workgroupSizes(d, 3 * cache.headDim, Math.max(cache.capacity, cache.headDim));
  const ffn = workgroupSizes(d, 2 * b, b);
  return Math.max(att.bytes, ffn.bytes) <= lim.maxComputeWorkgroupStorageSize;
}

function weightPair(a: WeightTensor, b: WeightTensor): Tensor[] {
  return [...weightBuffers(a), ...weightBuffers(b)];
}

/** Params fields a block does not use. */
const UNUSED = { head_dim: 1, hidden: 0, slice: 1, o_freqs: 0, offset: 0, cap: 1, context: 0, scale: 0, stride: 0 };

/**
 * The attention block of one step (shaders/layer_block.wgsl `attend_block`), one workgroup per
 * head: x = stream; q | k | v = in_proj · rms_norm(x) (alpha1, eps), RoPE when v.freqs is set, into
 * the cache's row of this step; attention over the ring within `context` (null: none), k and v
 * rounded as the cache stores them; partial h = LayerScale1 ⊙ out_proj[:, head h] · o_h.
 * Advances cache.offset by 1 and marks its k / v stale (attention() rewrites them from the rows).
 * - inProj [3D, D], outProj [D, D]: one format (f32 | f16 | bf16 | q8 | affine)
 * @throws ShapeError for a case canRunLayerBlocks refuses.
 */
export function attendBlock(rec: Recorder, s: BlockStream, a: { cache: KVCache; inProj: WeightTensor; outProj: WeightTensor; v: BlockVectors; eps: number; context: number | null }): void {
  const { cache } = a;
  const d = s.d;
  expectWeight('attention block in_proj', a.inProj);
  expectWeight('attention block out_proj', a.outProj);
  if (cache.numHeads * cache.headDim !== d || cache.numHeads > s.parts) throw new ShapeError(`attention block: cache '${cache.k.label}' (${cache.numHeads} × ${cache.headDim}) does not match the stream (D ${d}, ${s.parts} partial rows)`);
  const context = a.context ?? NO_CONTEXT;
  if (!Number.isInteger(context) || context <= 0) throw new ShapeError(`attention block: context must be a positive integer or null, got ${a.context}`);
  const rows = cache.rows;
  if (!rows) throw new ShapeError(`attention block: cache '${cache.k.label}' keeps no qkv rows`);
  const wg = workgroupSizes(d, 3 * cache.headDim, Math.max(cache.capacity, cache.headDim));
  rec.dispatch(attendBlockKernel, {
    buffers: [s.st, ...weightPair(a.inProj, a.outProj), rows, a.v.vecs],
    params: {
      ...UNUSED, d, head_dim: cache.headDim, n_in: s.nIn, in_base: s.base(s.from), out_base: s.base(1 - s.from), eps: a.eps,
      o_alpha: a.v.alpha1, o_scale: a.v.scale1 ?? NO_SCALE, o_freqs: a.v.freqs ?? 0,
      offset: cache.offset, cap: cache.capacity, context, scale: 1 / Math.sqrt(cache.headDim), stride: rows.shape[1],
    },
    constants: { ...weightConstants(a.inProj), ROPE: a.v.freqs === null ? 0 : 1, KV_HALF: cache.dtype === 'f16' ? 1 : 0, XS: wg.XS, NR: wg.NR, NP: wg.NP },
    workgroups: [cache.numHeads],
    label: `layer_block.attend.${weightFormatTag(a.inProj)}`,
  });
  s.from = 1 - s.from;
  s.nIn = cache.numHeads;
  cache.offset += 1;
  cache.kvStale = true;
}

/**
 * The FFN block of one step (shaders/layer_block.wgsl `ffn_block`), one workgroup per ffnSlice(H)
 * hidden units: x = stream; g = linear_in · rms_norm(x) (alpha2, eps); a = silu(gate) · up;
 * partial j = LayerScale2 ⊙ linear_out[:, slice j] · a_j.
 * - wIn [2H, D], wOut [D, H]: one format
 */
export function ffnBlock(rec: Recorder, s: BlockStream, a: { wIn: WeightTensor; wOut: WeightTensor; v: BlockVectors; eps: number }): void {
  const d = s.d;
  const [, hid] = expectWeight('FFN block linear_out', a.wOut);
  expectWeight('FFN block linear_in', a.wIn);
  const b = ffnSlice(hid);
  const n = Math.ceil(hid / b);
  if (n > s.parts) throw new ShapeError(`FFN block: ${n} slices of H ${hid} exceed the stream's ${s.parts} partial rows`);
  const wg = workgroupSizes(d, 2 * b, b);
  rec.dispatch(ffnBlockKernel, {
    buffers: [s.st, ...weightPair(a.wIn, a.wOut), s.spareRw, a.v.vecs],
    params: { ...UNUSED, d, n_in: s.nIn, in_base: s.base(s.from), out_base: s.base(1 - s.from), hidden: hid, slice: b, eps: a.eps, o_alpha: a.v.alpha2, o_scale: a.v.scale2 ?? NO_SCALE },
    constants: { ...weightConstants(a.wIn), XS: wg.XS, NR: wg.NR, NP: wg.NP },
    workgroups: [n],
    label: `layer_block.ffn.${weightFormatTag(a.wIn)}`,
  });
  s.from = 1 - s.from;
  s.nIn = n;
}

/**
 * The stream's value x = residual + Σ partials into the residual of the other half
 * (shaders/layer_block.wgsl `sum_block`), then copied into y [1, D].
 */
export function sumBlock(rec: Recorder, s: BlockStream, y: Tensor): void {
  expectShape('layer block output', y, [1, s.d], ['f32']);
  if (s.nIn > 0) {
    rec.dispatch(sumBlockKernel, {
      buffers: [s.st, ...Array<Tensor>(6).fill(s.spareRo), s.spareRw, s.spareRo],
      params: { ...UNUSED, d: s.d, n_in: s.nIn, in_base: s.base(s.from), out_base: s.base(1 - s.from), eps: 0, o_alpha: 0, o_scale: NO_SCALE },
      constants: { XS: 1, NR: 1, NP: 1 },
      workgroups: grid1d(s.d, WG),
      label: 'layer_block.sum',
    });
    s.from = 1 - s.from;
    s.nIn = 0;
  }
  rec.copy(s.residual(s.from), y, 4 * s.d);
}
