/**
 * Layer blocks (shaders/layer_block.wgsl): one transformer layer of a streaming call of T steps in
 * two dispatches, the attention block (norm1 + in_proj + RoPE + cache write + attention + out_proj,
 * one workgroup per head) and the FFN block (norm2 + linear_in + gated SiLU, or linear1 + GELU, +
 * linear_out, one workgroup per hidden slice), each leaving its second product as split-K partial
 * sums that the next block adds up in its prologue; `sumBlock` adds the last ones. Port of
 * moshi/modules/transformer.py `StreamingTransformerLayer` (batch 1) with RMSNorm or LayerNorm,
 * RoPE, LayerScale and the ring KV cache. For transformers whose small matrices make a step a chain
 * of dispatches rather than of bytes: the depformer (8 codebooks × 6 layers in sequence) and Mimi's
 * two transformers (opt-in: TransformerConfig.layerBlocks).
 *
 * The residual stream lives in a `BlockStream` buffer between the blocks: two halves of
 * (1 + maxParts) blocks of T rows of D f32 (block 0 the residual, blocks 1.. the partial sums); a
 * block reads one half and writes the other.
 */
import layerBlockSource from '../../shaders/layer_block.wgsl?raw';
import sincosSource from '../../shaders/sincos.wgsl?raw';
import geluSource from '../../shaders/gelu.wgsl?raw';
import { type GpuContext, Kernel, ParamsLayout, type Recorder, ShapeError, Tensor, type WeightTensor, expectShape, grid1d, storageBindings } from '../gpu/index.ts';
import type { KVCache } from './attention.ts';
import { WEIGHT_FORMATS_WGSL, expectWeight, weightBuffers, weightConstants, weightFormatTag } from './weight_format.ts';
import { weightRanges } from './weight_ranges.ts';

/** shaders/weight_formats.wgsl renamed for the second weight (`w2`, `w2scale`, `w2bias`, `weight2_at`, `weight2_epw`, `weight2_in_word`). */
const WEIGHT2_WGSL = WEIGHT_FORMATS_WGSL.split('\n')
  .filter((l) => !/^override\s/.test(l) && !/^fn i8_value/.test(l))
  .join('\n')
  .replace(/\bwscale_bf16\b/g, 'w2scale_bf16')
  .replace(/\bwbias_bf16\b/g, 'w2bias_bf16')
  .replace(/\bweight_(at|epw|in_word)\b/g, 'weight2_$1')
  .replace(/\bw\[/g, 'w2[')
  .replace(/\bwscale\[/g, 'w2scale[')
  .replace(/\bwbias\[/g, 'w2bias[');

const SOURCE = `${WEIGHT_FORMATS_WGSL}\n${WEIGHT2_WGSL}\n${sincosSource}\n${geluSource}\n${layerBlockSource}`;
const BINDINGS = storageBindings({ st: 'read_write', w: 'read', wscale: 'read', wbias: 'read', w2: 'read', w2scale: 'read', w2bias: 'read', kv: 'read_write', vecs: 'read' });
const PARAMS = new ParamsLayout([
  ['d', 'u32'], ['head_dim', 'u32'], ['n_in', 'u32'], ['in_base', 'u32'], ['out_base', 'u32'], ['hidden', 'u32'], ['slice', 'u32'], ['eps', 'f32'],
  ['o_alpha', 'u32'], ['o_bias', 'u32'], ['o_scale', 'u32'], ['o_freqs', 'u32'], ['offset', 'u32'], ['cap', 'u32'], ['context', 'u32'], ['scale', 'f32'], ['stride', 'u32'],
  ['v_base', 'u32'], ['t_len', 'u32'],
]);
export const attendBlockKernel = new Kernel('layer_block.attend', SOURCE, BINDINGS, PARAMS, 'attend_block');
export const ffnBlockKernel = new Kernel('layer_block.ffn', SOURCE, BINDINGS, PARAMS, 'ffn_block');
export const sumBlockKernel = new Kernel('layer_block.sum', SOURCE, BINDINGS, PARAMS, 'sum_block');

/**
 * Threads per workgroup and per weight row of the block kernels (overrides WG, LANES): 64 and 4
 * on a hardware adapter; 4 and 1 on a fallback (CPU) adapter, where a barrier in a 64-thread
 * workgroup costs a switch between its 16 SIMD groups (on SwiftShader the 64-thread FFN block of
 * the tiny test depformer took 6 ms a dispatch, about 40× its two fused matvecs), unless
 * kernelChoice.layerBlockThreads forces one (the hardware-path goldens force 64).
 */
export function blockThreads(ctx: GpuContext): { WG: number; LANES: number } {
  const forced = ctx.kernelChoice.layerBlockThreads;
  if (forced !== undefined && !(Number.isInteger(forced) && forced >= 4 && forced <= 256 && (forced & (forced - 1)) === 0)) {
    throw new ShapeError(`kernelChoice.layerBlockThreads must be a power of two in 4..256, got ${forced}`);
  }
  const wg = forced ?? (ctx.adapter.isFallbackAdapter ? 4 : 64);
  return { WG: wg, LANES: wg >= 16 ? 4 : 1 };
}
const NO_SCALE = 0xffffffff;
const NO_CONTEXT = 0xffffffff;
/** Storage buffers per dispatch (BINDINGS.length): the device must allow this many per stage. */
export const LAYER_BLOCK_STORAGE_BUFFERS = BINDINGS.length;

/**
 * Hidden units per workgroup of the FFN block for hidden size H: about 64 workgroups, a multiple
 * of 16 (whole u32 words of linear_out's columns in every format, 2-bit affine included).
 */
export function ffnSlice(hidden: number): number {
  return Math.max(16, Math.ceil(hidden / 64 / 16) * 16);
}

/** Partial-sum rows an attention block (heads) or FFN block (ceil(H / slice)) writes. */
export function blockParts(heads: number, hidden: number): number {
  return Math.max(heads, Math.ceil(hidden / ffnSlice(hidden)));
}

/**
 * Workgroup bytes and override sizes of a block kernel for T rows: XS ≥ D, NR rows of the first
 * product, NP ≥ slots / slice, NO ≥ head_dim (shaders/layer_block.wgsl's workgroup arrays).
 */
function workgroupSizes(ctx: GpuContext, d: number, nr: number, np: number, no: number, t: number): { bytes: number; XS: number; NR: number; NP: number; NO: number; TM: number; WG: number; LANES: number } {
  const { WG, LANES } = blockThreads(ctx);
  const XS = d;
  const NR = Math.max(1, nr);
  const NP = Math.max(1, np);
  const NO = Math.max(1, no);
  return { bytes: 4 * (t * (XS + NR * LANES + NR + NP + NO + 2) + WG), XS, NR, NP, NO, TM: t, WG, LANES };
}

/**
 * The residual stream between blocks: `st` [2, 1 + parts, rows, D] f32, the half the next block
 * reads (`from`), its number of partial blocks (`nIn`) and this call's T (`t` ≤ rows). Create one
 * per transformer (it is scratch).
 */
export class BlockStream {
  readonly st: Tensor;
  /** Bound where the FFN block reads no cache (`kv`, read_write) and where the sum reads no weights (read only). */
  readonly spareRw: Tensor;
  readonly spareRo: Tensor;
  /** [rows, D]: the sum's output when y cannot be bound (a window at an unaligned offset). */
  readonly out: Tensor;
  from = 0;
  nIn = 0;
  t = 1;
  constructor(ctx: GpuContext, readonly d: number, readonly parts: number, readonly rows: number, label: string) {
    this.st = ctx.tensor([2, 1 + parts, rows, d], 'f32', label);
    this.spareRw = ctx.tensor([1], 'u32', `${label}.spare_rw`);
    this.spareRo = ctx.tensor([1], 'u32', `${label}.spare_ro`);
    this.out = ctx.tensor([rows, d], 'f32', `${label}.out`);
  }
  /** f32 offset of half `i` in `st`. */
  base(i: number): number {
    return i * (1 + this.parts) * this.rows * this.d;
  }
  /** The residual (block 0, this call's T rows) of half `i` as a [T, D] window. */
  residual(i: number): Tensor {
    return new Tensor(this.st.buffer, [this.t, this.d], 'f32', `${this.st.label}[${i}].residual`, this.st.byteOffset + 4 * this.base(i), false);
  }
  /** Starts a call at x [T, D] (T ≤ rows): copies it into the residual of half 0, no partials. */
  start(rec: Recorder, x: Tensor): void {
    expectShape('layer block input', x, [-1, this.d], ['f32']);
    const t = x.shape[0];
    if (t < 1 || t > this.rows) throw new ShapeError(`layer blocks: ${t} rows in one call, the stream holds 1..${this.rows}`);
    this.t = t;
    rec.copy(x, this.residual(0), 4 * t * this.d);
    this.from = 0;
    this.nIn = 0;
  }
  destroy(): void {
    for (const t of [this.st, this.spareRw, this.spareRo, this.out]) t.destroy();
  }
}

/** The layer's small vectors in one f32 buffer (`vecs`) and their offsets in it. */
export interface BlockVectors {
  vecs: Tensor;
  /** Norm weights (RMSNorm alpha or LayerNorm weight) [D]. */
  alpha1: number;
  alpha2: number;
  /** LayerNorm biases [D], or null for RMSNorm. */
  bias1: number | null;
  bias2: number | null;
  /** LayerScale offsets, or null without LayerScale. */
  scale1: number | null;
  scale2: number | null;
  /** RoPE frequencies [head_dim / 2], or null without RoPE. */
  freqs: number | null;
}

/**
 * Copies a layer's norm weights [D] (and LayerNorm biases), LayerScales [D] and RoPE frequencies
 * [head_dim / 2] into one buffer on the GPU queue (submitted here, so ordered before any later step).
 */
export function blockVectors(ctx: GpuContext, parts: { alpha1: Tensor; alpha2: Tensor; bias1: Tensor | null; bias2: Tensor | null; scale1: Tensor | null; scale2: Tensor | null; freqs: Tensor | null }, label: string): BlockVectors {
  const list = [parts.alpha1, parts.alpha2, parts.scale1, parts.scale2, parts.freqs, parts.bias1, parts.bias2];
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
  return { vecs, alpha1: offsets[0] as number, alpha2: offsets[1] as number, scale1: offsets[2], scale2: offsets[3], freqs: offsets[4], bias1: offsets[5], bias2: offsets[6] };
}

function sameFormat(a: WeightTensor, b: WeightTensor): boolean {
  const x = weightConstants(a);
  const y = weightConstants(b);
  return x.DTYPE === y.DTYPE && x.BITS === y.BITS && x.GS === y.GS;
}

/** Elements per stored u32 word (shaders/weight_formats.wgsl weight_epw). */
function elementsPerWord(w: WeightTensor): number {
  const { DTYPE, BITS } = weightConstants(w);
  return DTYPE === 0 ? 1 : DTYPE <= 2 ? 2 : DTYPE === 3 ? 4 : 32 / BITS;
}

function boundWhole(ctx: GpuContext, w: WeightTensor): boolean {
  return weightRanges(ctx, w, 1).length === 1;
}

/** What a layer's blocks are: its cache, this step's weights, its FFN kind, RoPE, LayerNorm, rows T. */
export interface LayerBlockShape {
  cache: KVCache;
  inProj: WeightTensor;
  outProj: WeightTensor;
  wIn: WeightTensor;
  wOut: WeightTensor;
  gating: 'silu' | 'none';
  rope: boolean;
  layerNorm: boolean;
  t: number;
}

/** KVMODE of shaders/layer_block.wgsl: the qkv rows of a short cache for one step, else the key / value ring. */
function kvMode(o: LayerBlockShape): 0 | 1 {
  return o.cache.rows && o.t === 1 ? 0 : 1;
}

function attendSizes(ctx: GpuContext, o: LayerBlockShape) {
  const c = o.cache;
  return workgroupSizes(ctx, c.numHeads * c.headDim, 3 * c.headDim, c.capacity, c.headDim, o.t);
}

function ffnSizes(ctx: GpuContext, d: number, hid: number, gating: 'silu' | 'none', t: number) {
  const b = ffnSlice(hid);
  return workgroupSizes(ctx, d, gating === 'silu' ? 2 * b : b, b, 1, t);
}

/**
 * Whether a layer call can run as blocks on this device: fusion and the blocks not forced off; a
 * short cache with qkv rows for T = 1, or else T ≤ capacity over the key / value ring (no qkv rows
 * to keep up); head_dim even for RoPE or an f16 ring; D a multiple of the weights' elements per
 * u32 word; in_proj [3D, D] with out_proj [D, D], and
 * linear_in [2H, D] with linear_out [D, H] (silu) or linear1 [F, D] with linear2 [D, F] (none),
 * each pair in one format and bound whole; the workgroup memory and LAYER_BLOCK_STORAGE_BUFFERS
 * within the device limits. The caller (src/modules/transformer.ts) records the other kernels otherwise.
 */
export function canRunLayerBlocks(rec: Recorder, o: LayerBlockShape): boolean {
  const ctx = rec.ctx;
  if (ctx.kernelChoice.fusion === 'off' || ctx.kernelChoice.layerBlocks === 'off') return false;
  const lim = ctx.device.limits;
  if (lim.maxStorageBuffersPerShaderStage < LAYER_BLOCK_STORAGE_BUFFERS) return false;
  const { cache } = o;
  if (!Number.isInteger(o.t) || o.t < 1 || o.t > cache.capacity) return false;
  const mode = kvMode(o);
  if (mode === 1 && cache.rows) return false; // T > 1 on a short cache: its qkv rows would go stale
  if ((o.rope || (mode === 1 && cache.dtype === 'f16')) && cache.headDim % 2 !== 0) return false;
  const d = cache.numHeads * cache.headDim;
  const hid = o.wOut.shape[1];
  if (o.inProj.shape[0] !== 3 * d || o.inProj.shape[1] !== d || o.outProj.shape[0] !== d || o.outProj.shape[1] !== d) return false;
  if (o.wIn.shape[0] !== (o.gating === 'silu' ? 2 : 1) * hid || o.wIn.shape[1] !== d || o.wOut.shape[0] !== d) return false;
  if (!sameFormat(o.inProj, o.outProj) || !sameFormat(o.wIn, o.wOut)) return false;
  // The first products walk rows of D elements word by word: rows must start on a word.
  if (d % elementsPerWord(o.inProj) !== 0 || d % elementsPerWord(o.wIn) !== 0) return false;
  if (![o.inProj, o.outProj, o.wIn, o.wOut].every((w) => boundWhole(ctx, w))) return false;
  if (mode === 1 && (!cache.kv || cache.kv.byteLength > ctx.bindingLimit)) return false;
  return Math.max(attendSizes(ctx, o).bytes, ffnSizes(ctx, d, hid, o.gating, o.t).bytes) <= lim.maxComputeWorkgroupStorageSize;
}

function weightPair(a: WeightTensor, b: WeightTensor): Tensor[] {
  return [...weightBuffers(a), ...weightBuffers(b)];
}

/** Params fields a block does not use. */
const UNUSED = { head_dim: 1, hidden: 0, slice: 1, o_bias: 0, o_freqs: 0, offset: 0, cap: 1, context: 0, scale: 0, stride: 0, v_base: 0 };

/**
 * The attention block of this call (shaders/layer_block.wgsl `attend_block`), one workgroup per
 * head: x = stream [T, D]; q | k | v = in_proj · norm1(x) (RMSNorm with v.alpha1, or LayerNorm with
 * v.alpha1 / v.bias1; eps), RoPE at positions offset + t when v.freqs is set, written into the
 * cache (its qkv rows for one step on a short cache, else keys and values); causal attention over
 * the ring within `context` (null: none), k and v as the cache stores them; partial h =
 * LayerScale1 ⊙ out_proj[:, head h] · o_h. Advances cache.offset by T; after a qkv-rows step marks
 * its k / v stale (attention() rewrites them from the rows).
 * - shape: as canRunLayerBlocks took it (in_proj [3D, D], out_proj [D, D] in one format)
 * @throws ShapeError for a case canRunLayerBlocks refuses.
 */
export function attendBlock(rec: Recorder, s: BlockStream, o: LayerBlockShape, a: { v: BlockVectors; eps: number; context: number | null }): void {
  const { cache } = o;
  const d = s.d;
  expectWeight('attention block in_proj', o.inProj);
  expectWeight('attention block out_proj', o.outProj);
  if (cache.numHeads * cache.headDim !== d || cache.numHeads > s.parts || o.t !== s.t) {
    throw new ShapeError(`attention block: cache '${cache.k.label}' (${cache.numHeads} × ${cache.headDim}, T ${o.t}) does not match the stream (D ${d}, ${s.parts} partial blocks, T ${s.t})`);
  }
  const context = a.context ?? NO_CONTEXT;
  if (!Number.isInteger(context) || context <= 0) throw new ShapeError(`attention block: context must be a positive integer or null, got ${a.context}`);
  if (o.layerNorm !== (a.v.bias1 !== null) || o.rope !== (a.v.freqs !== null)) throw new ShapeError(`attention block: the layer's vectors do not match its norm / RoPE ('${a.v.vecs.label}')`);
  if (!canRunLayerBlocks(rec, o)) throw new ShapeError(`attention block: cache '${cache.k.label}' with in_proj '${o.inProj.label}' cannot run as a layer block here (see canRunLayerBlocks)`);
  const mode = kvMode(o);
  const wg = attendSizes(rec.ctx, o);
  const rows = cache.rows;
  rec.dispatch(attendBlockKernel, {
    buffers: [s.st, ...weightPair(o.inProj, o.outProj), mode === 0 ? (rows as Tensor) : (cache.kv as Tensor), a.v.vecs],
    params: {
      ...UNUSED, d, head_dim: cache.headDim, n_in: s.nIn, in_base: s.base(s.from), out_base: s.base(1 - s.from), eps: a.eps,
      o_alpha: a.v.alpha1, o_bias: a.v.bias1 ?? 0, o_scale: a.v.scale1 ?? NO_SCALE, o_freqs: a.v.freqs ?? 0,
      offset: cache.offset, cap: cache.capacity, context, scale: 1 / Math.sqrt(cache.headDim),
      stride: mode === 0 ? (rows as Tensor).shape[1] : 0, v_base: mode === 0 ? 0 : cache.vByteOffset / 4, t_len: o.t,
    },
    constants: { ...weightConstants(o.inProj), NORM: o.layerNorm ? 1 : 0, ROPE: o.rope ? 1 : 0, KVMODE: mode, KV_HALF: cache.dtype === 'f16' ? 1 : 0, TM: wg.TM, XS: wg.XS, NR: wg.NR, NP: wg.NP, NO: wg.NO, WG: wg.WG, LANES: wg.LANES },
    workgroups: [cache.numHeads],
    label: `layer_block.attend.${weightFormatTag(o.inProj)}.wg${wg.WG}`,
  });
  s.from = 1 - s.from;
  s.nIn = cache.numHeads;
  cache.offset += o.t;
  if (mode === 0) cache.kvStale = true;
}

/**
 * The FFN block of this call (shaders/layer_block.wgsl `ffn_block`), one workgroup per
 * ffnSlice(H) hidden units: x = stream; silu: g = linear_in · norm2(x), a = silu(gate) · up;
 * none: a = gelu(linear1 · norm2(x)); partial j = LayerScale2 ⊙ linear_out[:, slice j] · a_j.
 * - o.wIn [2H, D] | [F, D], o.wOut [D, H] | [D, F]: one format
 */
export function ffnBlock(rec: Recorder, s: BlockStream, o: LayerBlockShape, a: { v: BlockVectors; eps: number }): void {
  const d = s.d;
  const [, hid] = expectWeight('FFN block linear_out', o.wOut);
  expectWeight('FFN block linear_in', o.wIn);
  const b = ffnSlice(hid);
  const n = Math.ceil(hid / b);
  if (n > s.parts || o.t !== s.t) throw new ShapeError(`FFN block: ${n} slices of H ${hid} (T ${o.t}) do not fit the stream's ${s.parts} partial blocks (T ${s.t})`);
  if (o.layerNorm !== (a.v.bias2 !== null)) throw new ShapeError(`FFN block: the layer's vectors do not match its norm ('${a.v.vecs.label}')`);
  const wg = ffnSizes(rec.ctx, d, hid, o.gating, o.t);
  rec.dispatch(ffnBlockKernel, {
    buffers: [s.st, ...weightPair(o.wIn, o.wOut), s.spareRw, a.v.vecs],
    params: {
      ...UNUSED, d, n_in: s.nIn, in_base: s.base(s.from), out_base: s.base(1 - s.from), hidden: hid, slice: b, eps: a.eps,
      o_alpha: a.v.alpha2, o_bias: a.v.bias2 ?? 0, o_scale: a.v.scale2 ?? NO_SCALE, t_len: o.t,
    },
    constants: { ...weightConstants(o.wIn), NORM: o.layerNorm ? 1 : 0, ACT: o.gating === 'silu' ? 0 : 1, TM: wg.TM, XS: wg.XS, NR: wg.NR, NP: wg.NP, NO: wg.NO, WG: wg.WG, LANES: wg.LANES },
    workgroups: [n],
    label: `layer_block.ffn.${weightFormatTag(o.wIn)}.wg${wg.WG}`,
  });
  s.from = 1 - s.from;
  s.nIn = n;
}

/**
 * The stream's value y = residual + Σ partials [T, D] (shaders/layer_block.wgsl `sum_block`,
 * writing y itself); with no partials pending a copy of the residual, and for a y window no
 * binding can start at, the sum into the stream's `out` and then a copy.
 */
export function sumBlock(rec: Recorder, s: BlockStream, y: Tensor): void {
  expectShape('layer block output', y, [s.t, s.d], ['f32']);
  if (s.nIn > 0 && y.byteOffset % rec.ctx.device.limits.minStorageBufferOffsetAlignment === 0) {
    rec.dispatch(sumBlockKernel, sumArgs(s, y));
    s.nIn = 0;
    return;
  }
  let src = s.residual(s.from);
  if (s.nIn > 0) {
    src = new Tensor(s.out.buffer, [s.t, s.d], 'f32', s.out.label, s.out.byteOffset, false);
    rec.dispatch(sumBlockKernel, sumArgs(s, src));
    s.nIn = 0;
  }
  rec.copy(src, y, 4 * s.t * s.d);
}

/** sum_block's dispatch writing the stream's value into `out` [T, D]. */
function sumArgs(s: BlockStream, out: Tensor) {
  return {
    buffers: [s.st, ...Array<Tensor>(6).fill(s.spareRo), out, s.spareRo],
    params: { ...UNUSED, d: s.d, n_in: s.nIn, in_base: s.base(s.from), out_base: 0, eps: 0, o_alpha: 0, o_scale: NO_SCALE, t_len: s.t },
    constants: { TM: s.t, XS: 1, NR: 1, NP: 1, NO: 1, WG: 64, LANES: 1 },
    workgroups: grid1d(s.t * s.d, 64),
    label: 'layer_block.sum',
  };
}
