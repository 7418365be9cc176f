import source from '../../shaders/attention.wgsl?raw';
import { type GpuContext, Kernel, ParamsLayout, type Recorder, ShapeError, Tensor, expectShape, grid1d, storageBindings } from '../gpu/index.ts';
import { storageBytes } from '../gpu/dtype.ts';
import { rope, ropeFreqsTensor } from './rope.ts';

const WG = 64;
/** Largest head dim the attend pass supports (MAX_DH in shaders/attention.wgsl, = 4·WG). */
export const MAX_HEAD_DIM = 256;
/** Params.context when there is no context limit (the official `context=None`). */
const NO_CONTEXT = 0xffffffff;
/**
 * Slots per split of the flash-decoding path: one new step (T = 1) over more cached slots than
 * this is attended by ceil(n_slots / SPLIT_SLOTS) workgroups per head plus a combine pass, so a
 * long context (Moshi's 3000 steps) spreads over many workgroups instead of one per head.
 */
export const SPLIT_SLOTS = 256;
/**
 * Caches of at most this many slots (the depformer's dep_q steps) also keep each step's in_proj
 * output in `KVCache.rows`, from which the fused attention + out_proj matvec
 * (src/kernels/linear.ts fusedAttendMatvec) recomputes the attention in every workgroup: one
 * dispatch instead of attend + out_proj.
 */
export const ROWS_MAX_SLOTS = 16;

/** f32 elements per row of `KVCache.rows`: 3·D rounded up to 64 (rows start at 256-byte offsets, bindable). */
export function kvRowStride(numHeads: number, headDim: number): number {
  return Math.ceil((3 * numHeads * headDim) / 64) * 64;
}

/** Bytes of `KVCache.rows` for a cache of these sizes (0 when it keeps none). */
export function kvRowsBytes(numHeads: number, headDim: number, capacity: number): number {
  return capacity <= ROWS_MAX_SLOTS ? 4 * capacity * kvRowStride(numHeads, headDim) : 0;
}

export const attentionKernel = new Kernel('attention', source, storageBindings({ qkv: 'read', kc: 'read_write', vc: 'read_write', out: 'read_write', part: 'read_write' }), new ParamsLayout([
  ['t_len', 'u32'], ['heads', 'u32'], ['head_dim', 'u32'], ['cap', 'u32'],
  ['offset', 'u32'], ['n_slots', 'u32'], ['context', 'u32'], ['scale', 'f32'],
  ['n_split', 'u32'], ['split_len', 'u32'],
]));

/**
 * The ring KV cache of one attention layer, port of moshi/modules/transformer.py `RingKVCache`
 * (batch 1): keys and values of the last `capacity` steps, slot = absolute position % capacity.
 * `k`, `v`: [numHeads, capacity, headDim] f32 on the GPU. `offset` is the official `end_offset`
 * (and the MHA `offset`): the number of steps written since the last reset, advanced by
 * `attention()` at record time. The official capacity is `context`, or `weights_per_step` when
 * context is None (the depformer).
 * `dtype` 'f16' stores keys and values as packed halves ([H, cap, Dh rounded up to even], two per
 * u32 word: half the memory and bandwidth, as the official bf16 models keep their cache in the
 * model dtype); scores and softmax stay f32.
 */
export class KVCache {
  /** The one buffer holding `k` (from byte 0) and `v` (from vByteOffset), as u32 words; null when
   *  the two would exceed maxBufferSize together and are two buffers. */
  readonly kv: Tensor | null;
  readonly vByteOffset: number;
  readonly k: Tensor; // [H, cap, Dh] f32 | [H, cap, Dh_pad] f16
  readonly v: Tensor; // [H, cap, Dh] f32 | [H, cap, Dh_pad] f16
  readonly dtype: 'f32' | 'f16';
  readonly numHeads: number;
  readonly headDim: number;
  readonly capacity: number;
  /**
   * Flash-decoding partials [H, ceil(cap / SPLIT_SLOTS), Dh + 2]. A cache of at most SPLIT_SLOTS
   * slots never splits; it still binds a 1-element buffer here (every kernel binding needs one).
   */
  readonly part: Tensor;
  /** Cached slots per flash-decoding split: SPLIT_SLOTS, or the context's forced
   *  `kernelChoice.attentionSplitSlots` when this cache was created. */
  readonly splitSlots: number;
  /**
   * Short caches only (kvRowsBytes > 0, else null): the qkv rows [capacity, kvRowStride] f32 of the
   * cached steps, row = slot, its first 3·D elements q | k | v (q and k rotated), written by every
   * step (the fused in_proj into `rowAt(slot)`, `attention()` by a copy); fusedAttendMatvec attends
   * over them.
   */
  readonly rows: Tensor | null;
  /**
   * True when steps recorded by fusedAttendMatvec (which writes no k / v) are missing from `k` and
   * `v`: the next `attention()` first writes them from `rows`.
   */
  kvStale = false;
  offset = 0;

  constructor(readonly ctx: GpuContext, o: { numHeads: number; headDim: number; capacity: number; label: string; dtype?: 'f32' | 'f16' }) {
    for (const f of ['numHeads', 'headDim', 'capacity'] as const) {
      if (!Number.isInteger(o[f]) || o[f] <= 0) throw new ShapeError(`KVCache '${o.label}': ${f} must be a positive integer, got ${o[f]}`);
    }
    if (o.headDim > MAX_HEAD_DIM) throw new ShapeError(`KVCache '${o.label}': head_dim ${o.headDim} exceeds the supported maximum ${MAX_HEAD_DIM}`);
    this.numHeads = o.numHeads;
    this.headDim = o.headDim;
    this.capacity = o.capacity;
    this.dtype = o.dtype ?? 'f32';
    const row = this.dtype === 'f16' ? o.headDim + (o.headDim & 1) : o.headDim;
    // Keys and values in one buffer (values from a 256-byte boundary), so a kernel that attends and
    // writes both can bind them as one (src/kernels/layer_block.ts); attention() binds each window.
    // Two buffers when one would exceed the device's maxBufferSize (kv is then null).
    const shape = [o.numHeads, o.capacity, row];
    const kBytes = Math.max(4, storageBytes(this.dtype, shape[0] * shape[1] * shape[2]));
    this.vByteOffset = Math.ceil(kBytes / 256) * 256;
    if (this.vByteOffset + kBytes <= ctx.device.limits.maxBufferSize) {
      this.kv = ctx.tensor([(this.vByteOffset + kBytes) / 4], 'u32', `${o.label}.kv`, { rangeBound: true });
      this.k = new Tensor(this.kv.buffer, shape, this.dtype, `${o.label}.k`, 0, false);
      this.v = new Tensor(this.kv.buffer, shape, this.dtype, `${o.label}.v`, this.vByteOffset, false);
    } else {
      this.kv = null;
      this.k = ctx.tensor(shape, this.dtype, `${o.label}.k`);
      this.v = ctx.tensor(shape, this.dtype, `${o.label}.v`);
    }
    const forced = ctx.kernelChoice.attentionSplitSlots;
    if (forced !== undefined && (!Number.isInteger(forced) || forced <= 0)) throw new ShapeError(`KVCache '${o.label}': kernelChoice.attentionSplitSlots must be a positive integer, got ${forced}`);
    this.splitSlots = forced ?? SPLIT_SLOTS;
    const splits = Math.ceil(o.capacity / this.splitSlots);
    this.part = ctx.tensor(splits > 1 ? [o.numHeads, splits, o.headDim + 2] : [1], 'f32', `${o.label}.part`);
    this.rows = kvRowsBytes(o.numHeads, o.headDim, o.capacity) > 0 ? ctx.tensor([o.capacity, kvRowStride(o.numHeads, o.headDim)], 'f32', `${o.label}.rows`) : null;
  }

  /** Row `slot` of `rows` as a [1, 3·D] window (at a 256-byte offset). */
  rowAt(slot: number): Tensor {
    if (!this.rows) throw new ShapeError(`KVCache '${this.k.label}': this cache keeps no qkv rows (capacity ${this.capacity} > ${ROWS_MAX_SLOTS})`);
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.capacity) throw new ShapeError(`KVCache '${this.k.label}': slot ${slot} outside [0, ${this.capacity})`);
    const stride = this.rows.shape[1];
    return new Tensor(this.rows.buffer, [1, 3 * this.numHeads * this.headDim], 'f32', `${this.rows.label}[${slot}]`, this.rows.byteOffset + 4 * slot * stride, false);
  }

  /** Bytes of keys, values, flash-decoding partials and qkv rows on the GPU. */
  get byteLength(): number {
    return this.k.byteLength + this.v.byteLength + this.part.byteLength + (this.rows?.byteLength ?? 0);
  }

  /** Forgets every cached step (`RingKVCache.reset` + the MHA offset): the next step has position 0. */
  reset(): void {
    this.offset = 0;
    this.kvStale = false;
  }

  destroy(): void {
    if (this.kv) this.kv.destroy();
    else {
      this.k.destroy();
      this.v.destroy();
    }
    this.part.destroy();
    this.rows?.destroy();
  }
}

/**
 * Threads of an `attend` workgroup: a power of two covering min(capacity, 64) slots per tile and
 * Dh ≤ 4·WG output dims, at least 4 and at most 64. Fixed per cache (not per step), so a layer
 * never switches pipelines mid-stream; small caches (the depformer's dep_q slots) get small
 * workgroups, whose barriers cost far less on CPU adapters (SwiftShader).
 */
export function attendWorkgroupSize(capacity: number, headDim: number): number {
  const need = Math.max(Math.min(capacity, WG), Math.ceil(headDim / 4), 4);
  let wg = 4;
  while (wg < need) wg *= 2;
  return Math.min(wg, WG);
}

/**
 * Streaming causal multi-head attention for T new steps (moshi/modules/transformer.py
 * `StreamingMultiheadAttention.forward` in streaming mode, batch 1, kv_repeat 1, between in_proj
 * and out_proj). qkv: [T, 3·D] f32 = in_proj output, rows q | k | v, each head-major (h d);
 * out: [T, D] f32. Applies RoPE (moshi/modules/rope.py, interleaved, when `rope` is not null) to
 * q and k IN PLACE in qkv at absolute positions cache.offset + t, writes k/v into the ring cache,
 * attends each query to the cached keys with pos_k ≤ pos_q and pos_q - pos_k < context (the
 * official mask, also when the ring wraps; context null = no limit), softmax scale 1/sqrt(Dh),
 * then advances cache.offset by T. Records 1 to 3 dispatches (RoPE, attend, which writes the new
 * keys and values itself; with kernelChoice.fusion 'off' a separate KV write before it; one new
 * step over more than SPLIT_SLOTS cached slots attends in slot ranges plus a combine: flash-decoding),
 * plus, after steps of fusedAttendMatvec (cache.kvStale), one KV write per filled slot from
 * `cache.rows`; a cache with `rows` gets the T rows copied there too.
 * A non-streaming official call over T ≤ capacity steps from a fresh cache gives the same result.
 * Throws ShapeError on bad shapes or when T exceeds the cache capacity (the official cache would
 * overwrite slots it still needs: feed such inputs in chunks of at most `capacity` steps).
 */
export function attention(
  rec: Recorder,
  a: {
    qkv: Tensor; out: Tensor; cache: KVCache; numHeads: number; context: number | null; rope: { maxPeriod: number } | null;
    /**
     * Flash-decoding for one step over a long cache: 'auto' on hardware adapters only, 'always',
     * or 'never'; unset = the context's `kernelChoice.attentionSplit` (default 'auto'). On a GPU one workgroup per head leaves most of the chip idle at
     * Moshi's 3000-step context (32 heads); on CPU fallback adapters such as SwiftShader every core
     * is already busy and the extra pass measured slower (136 -> 178 ms for 32 heads × 3000 slots
     * × Dh 128). Not yet measured on a GPU.
     */
    split?: 'auto' | 'always' | 'never';
  },
): void {
  const { qkv, out, cache, numHeads } = a;
  expectShape('attention qkv', qkv, [-1, -1], ['f32']);
  const [t, w] = qkv.shape;
  if (w % 3 !== 0) throw new ShapeError(`attention qkv '${qkv.label}' must be [T, 3·D], got [${qkv.shape.join(', ')}]`);
  const d = w / 3;
  if (numHeads !== cache.numHeads || d !== numHeads * cache.headDim) {
    throw new ShapeError(`attention: qkv '${qkv.label}' [${qkv.shape.join(', ')}] with ${numHeads} heads does not match the KV cache (${cache.numHeads} heads of ${cache.headDim})`);
  }
  expectShape('attention output', out, [t, d], ['f32']);
  if (out.buffer === qkv.buffer) throw new ShapeError(`attention: qkv '${qkv.label}' and output '${out.label}' share a buffer; use distinct tensors`);
  if (t > cache.capacity) {
    throw new ShapeError(`attention: ${t} steps in one call exceed the KV cache capacity ${cache.capacity} ('${cache.k.label}'); feed at most ${cache.capacity} steps per call`);
  }
  const context = a.context ?? NO_CONTEXT;
  if (!Number.isInteger(context) || context <= 0) throw new ShapeError(`attention: context must be a positive integer or null, got ${a.context}`);
  if (t === 0) return;
  const dh = cache.headDim;
  const offset = cache.offset;
  if (a.rope) {
    // q and k of each row are 2·H consecutive heads of Dh: rotate both in one dispatch.
    rope(rec, qkv, ropeFreqsTensor(rec.ctx, dh, a.rope.maxPeriod), { heads: 2 * numHeads, headDim: dh, offset });
  }
  const nSlots = Math.min(offset + t, cache.capacity);
  const mode = a.split ?? rec.ctx.kernelChoice.attentionSplit;
  const splitOk = t === 1 && (mode === 'always' || (mode === 'auto' && !rec.ctx.adapter.isFallbackAdapter));
  const nSplit = splitOk ? Math.ceil(nSlots / cache.splitSlots) : 1;
  const common = {
    t_len: t, heads: numHeads, head_dim: dh, cap: cache.capacity, offset,
    n_slots: nSlots, context: Math.min(context, NO_CONTEXT), scale: 1 / Math.sqrt(dh),
    n_split: nSplit, split_len: cache.splitSlots,
  };
  const buffers = [qkv, cache.k, cache.v, out, cache.part];
  const attendWg = attendWorkgroupSize(cache.capacity, dh);
  const KV_HALF = cache.dtype === 'f16' ? 1 : 0;
  if (cache.kvStale && cache.rows) {
    // Steps of fusedAttendMatvec are only in `rows` (row = slot): write their k and v first, one
    // op-0 write per filled slot (only after the kernel path changed within a stream).
    const writes = KV_HALF ? numHeads * Math.ceil(dh / 2) : d;
    for (let j = 0; j < Math.min(offset, cache.capacity); j++) {
      rec.dispatch(attentionKernel, { buffers: [cache.rowAt(j), cache.k, cache.v, out, cache.part], params: { ...common, t_len: 1, offset: j }, constants: { OP: 0, WG, KV_HALF }, workgroups: grid1d(writes, WG), label: 'attention.write_kv_rows' });
    }
    cache.kvStale = false;
  }
  // The attend pass writes the k and v of its (step, head) itself, no write dispatch: one step
  // (decode) writes and reads its slot back (WRITE = 1); T > 1 steps (Mimi's two per frame) read
  // this call's rows from qkv (WRITE = 2).
  const WRITE = rec.ctx.kernelChoice.fusion === 'off' ? 0 : t === 1 ? 1 : 2;
  const fused = WRITE ? '+write_kv' : '';
  if (!WRITE) {
    const writes = KV_HALF ? t * numHeads * Math.ceil(dh / 2) : t * d; // one thread per packed word with halves
    rec.dispatch(attentionKernel, { buffers, params: common, constants: { OP: 0, WG, KV_HALF }, workgroups: grid1d(writes, WG), label: 'attention.write_kv' });
  }
  if (nSplit > 1) {
    // Flash-decoding: nSplit workgroups per head over slot ranges, then one combine per head.
    rec.dispatch(attentionKernel, { buffers, params: common, constants: { OP: 2, WG: attendWg, KV_HALF, WRITE }, workgroups: grid1d(numHeads * nSplit, 1), label: `attention.attend_split${fused}` });
    rec.dispatch(attentionKernel, { buffers, params: common, constants: { OP: 3, WG: attendWg, KV_HALF }, workgroups: grid1d(numHeads, 1), label: 'attention.combine' });
  } else {
    rec.dispatch(attentionKernel, { buffers, params: common, constants: { OP: 1, WG: attendWg, KV_HALF, WRITE }, workgroups: grid1d(t * numHeads, 1), label: `attention.attend${fused}` });
  }
  if (cache.rows) {
    // Keep the rows complete (a later step may take fusedAttendMatvec): q, k (rotated) and v of step t in row (offset + t) % cap.
    for (let i = 0; i < t; i++) {
      rec.copy(new Tensor(qkv.buffer, [1, 3 * d], 'f32', `${qkv.label}[${i}]`, qkv.byteOffset + 4 * i * 3 * d, false), cache.rowAt((offset + i) % cache.capacity), 3 * d * 4);
    }
  }
  cache.offset = offset + t;
}
