import linearSource from '../../shaders/linear.wgsl?raw';
import matvecSource from '../../shaders/matvec.wgsl?raw';
import matvecQuantSource from '../../shaders/matvec_quant.wgsl?raw';
import matvecFuseSource from '../../shaders/matvec_fuse.wgsl?raw';
import matvecReduceSource from '../../shaders/matvec_reduce.wgsl?raw';
import matvecSubgroupSource from '../../shaders/matvec_subgroup.wgsl?raw';
import sincosSource from '../../shaders/sincos.wgsl?raw';
import geluSource from '../../shaders/gelu.wgsl?raw';
import { type DType, type GpuContext, Kernel, ParamsLayout, QuantizedTensor, type Recorder, ShapeError, Tensor, type WeightTensor, expectShape, grid1d, storageBindings } from '../gpu/index.ts';
import { WEIGHT_FORMATS_WGSL, expectWeight, weightBuffers, weightConstants, weightFormatTag } from './weight_format.ts';
import { weightRanges } from './weight_ranges.ts';
import type { KVCache } from './attention.ts';

/** Override constant DTYPE of shaders/matvec.wgsl. */
const DTYPE_CODE: Partial<Record<DType, number>> = { f32: 0, f16: 1, bf16: 2 };

const BINDINGS = storageBindings({ x: 'read', w: 'read', b: 'read', alpha: 'read', aux: 'read', y: 'read_write' });
/** shaders/linear.wgsl: any weight format (shaders/weight_formats.wgsl). */
const FORMAT_BINDINGS = storageBindings({ x: 'read', w: 'read', wscale: 'read', wbias: 'read', b: 'read', aux: 'read', ln: 'read', y: 'read_write' });
/** shaders/matvec_quant.wgsl: the weight format's buffers, the fused RMSNorm's alpha and `aux` (RoPE freqs or LayerScale). */
const QUANT_BINDINGS = storageBindings({ x: 'read', w: 'read', wscale: 'read', wbias: 'read', b: 'read', alpha: 'read', aux: 'read', y: 'read_write' });

const linearParams = new ParamsLayout([['m', 'u32'], ['n', 'u32'], ['k', 'u32'], ['has_bias', 'u32'], ['rope_rows', 'u32'], ['head_dim', 'u32'], ['offset', 'u32'], ['has_scale', 'u32'], ['eps', 'f32']]);
const LINEAR_WGSL = `${WEIGHT_FORMATS_WGSL}\n${sincosSource}\n${geluSource}\n${linearSource}`;
/** Tiled register-blocked GEMM (M > 1), shaders/linear.wgsl `matmul`. */
export const matmulKernel = new Kernel('linear.matmul', LINEAR_WGSL, FORMAT_BINDINGS, linearParams, 'matmul');
/** Generic scalar matrix-vector product (M = 1, any K), shaders/linear.wgsl `matvec`. */
export const matvecGenericKernel = new Kernel('linear.matvec', LINEAR_WGSL, FORMAT_BINDINGS, linearParams, 'matvec');
/**
 * The matvec kernels are a body (the weight format: shaders/matvec.wgsl for f32/f16/bf16,
 * shaders/matvec_quant.wgsl for q8/affine), shaders/matvec_fuse.wgsl (the fused RMSNorm prologue
 * and residual / gated-SiLU / RoPE epilogues, pipeline overrides NORM and OUT; with
 * shaders/sincos.wgsl) and one of two reductions:
 * shaders/matvec_reduce.wgsl (workgroup memory, entry `main`) or, under `enable subgroups;`,
 * shaders/matvec_subgroup.wgsl (one subgroupAdd, entry `main_subgroup`; compiled only on devices
 * with `subgroups`).
 */
function matvecKernels(name: string, body: string, bindings: typeof BINDINGS | typeof QUANT_BINDINGS): { reduce: Kernel; subgroup: Kernel } {
  const params = new ParamsLayout([['n', 'u32'], ['k', 'u32'], ['kw', 'u32'], ['has_bias', 'u32'], ['eps', 'f32'], ['rope_rows', 'u32'], ['head_dim', 'u32'], ['offset', 'u32'], ['has_scale', 'u32'], ['cap', 'u32'], ['context', 'u32'], ['scale', 'f32'], ['stride', 'u32']]);
  const fuse = `${sincosSource}\n${matvecFuseSource}`;
  return {
    reduce: new Kernel(name, `${body}\n${fuse}\n${matvecReduceSource}`, bindings, params),
    subgroup: new Kernel(`${name}.subgroup`, `enable subgroups;\n${body}\n${fuse}\n${matvecSubgroupSource}`, bindings, params, 'main_subgroup'),
  };
}
const plainMatvec = matvecKernels('matvec', matvecSource, BINDINGS);
const quantMatvec = matvecKernels('matvec.quant', matvecQuantSource, QUANT_BINDINGS);
/** Vectorized matrix-vector product (M = 1, 16-byte aligned rows): shaders/matvec.wgsl + matvec_reduce.wgsl. */
export const matvecKernel = plainMatvec.reduce;
/** Its subgroup variant: shaders/matvec.wgsl + matvec_subgroup.wgsl. */
export const matvecSubgroupKernel = plainMatvec.subgroup;
/** Matrix-vector product over a quantized weight (M = 1, word-aligned rows): shaders/matvec_quant.wgsl + a reduction. */
export const matvecQuantKernel = quantMatvec.reduce;
export const matvecQuantSubgroupKernel = quantMatvec.subgroup;

const fixedSubgroupSize = new WeakMap<GpuContext, number>();
/**
 * The device's subgroup size when the `subgroups` feature is enabled and the adapter reports one
 * fixed size (subgroupMinSize == subgroupMaxSize, a power of two in 4..128), else 0. The subgroup
 * matvec relies on a workgroup of that many threads being exactly one subgroup.
 */
export function fixedSubgroupSizeOf(ctx: GpuContext): number {
  let s = fixedSubgroupSize.get(ctx);
  if (s === undefined) {
    const info = ctx.device.adapterInfo as GPUAdapterInfo | undefined;
    const lo = info?.subgroupMinSize ?? 0;
    const hi = info?.subgroupMaxSize ?? 0;
    s = ctx.hasSubgroups && lo === hi && lo >= 4 && lo <= 128 && (lo & (lo - 1)) === 0 ? lo : 0;
    fixedSubgroupSize.set(ctx, s);
  }
  return s;
}

export interface LinearOptions {
  /** Allow the subgroup matvec where the device supports it (default true); false forces the
   *  workgroup-memory reduction (tests and benchmarks compare both). */
  subgroups?: boolean;
}

const MATVEC_WG = 64;
const MATVEC_ROWS = 4; // const ROWS in shaders/matvec.wgsl
const GENERIC_ROWS = 4; // const ROWS in shaders/linear.wgsl
const TILE = 32; // y tile of one matmul workgroup in shaders/linear.wgsl

/** Which shader path `linear` takes for these sizes (exposed for tests and benchmarks). */
export function linearPath(m: number, k: number, dtype: DType | 'q8' | 'affine', bits = 8): 'matvec' | 'matvec-quant' | 'matvec-generic' | 'matmul' {
  // 'matvec' runs as matvec_subgroup.wgsl on devices with a fixed subgroup size (see fixedSubgroupSizeOf).
  if (m !== 1) return 'matmul';
  // The quantized matvec reads rows as whole vec4<u32> words (K·bits % 128 == 0).
  if (dtype === 'q8') return k % 16 === 0 ? 'matvec-quant' : 'matvec-generic';
  if (dtype === 'affine') return (k * bits) % 128 === 0 ? 'matvec-quant' : 'matvec-generic';
  return k % (dtype === 'f32' ? 4 : 8) === 0 ? 'matvec' : 'matvec-generic';
}

/**
 * y = x · Wᵀ + b (torch.nn.functional.linear; nn.Linear in moshi/modules/transformer.py,
 * gating.py, lm.py). f32 accumulation.
 * - x: f32 [..., K] (rank ≥ 1; M = product of the leading dims, 1 for a vector)
 * - w: [N, K] in PyTorch layout, f32 | f16 | bf16 (halves packed two per u32), or a
 *   QuantizedTensor (PyTorch q8, MLX affine q2/q4/q8: dequantized in registers, weight-only)
 * - b: f32 [N] or null
 * - y: f32 [..., N] with the same leading dims as x
 * M = 1 takes the vectorized matvec (shaders/matvec.wgsl; its subgroup variant
 * shaders/matvec_subgroup.wgsl where the device has `subgroups` with one fixed subgroup size) when
 * K % 8 == 0 (halves) / K % 4 == 0 (f32), the quantized matvec (shaders/matvec_quant.wgsl) for
 * quantized weights whose rows are whole vec4 words (K·bits % 128 == 0), else the generic matvec; M > 1 takes the
 * register-blocked matmul (shaders/linear.wgsl), which reads every format.
 * A weight over one binding's size (GpuContext.bindingLimit) is bound in row ranges, one dispatch
 * per range (src/kernels/weight_ranges.ts; M = 1 only).
 * x and y must be distinct buffers. Throws ShapeError naming the tensor whose shape or dtype is wrong.
 */
export function linear(rec: Recorder, x: Tensor, w: WeightTensor, b: Tensor | null, y: Tensor, opts: LinearOptions = {}): void {
  const [n, k] = expectWeight('linear weight', w);
  if (x.rank < 1) throw new ShapeError(`linear input '${x.label}' must have rank ≥ 1, got a scalar`);
  expectShape('linear input', x, [...x.shape.slice(0, -1), k], ['f32']);
  expectShape('linear output', y, [...x.shape.slice(0, -1), n], ['f32']);
  if (b) expectShape('linear bias', b, [n], ['f32']);
  if (x.buffer === y.buffer) throw new ShapeError(`linear: input '${x.label}' and output '${y.label}' share a buffer; use distinct tensors`);
  if (k === 0) throw new ShapeError(`linear weight '${w.label}' has K = 0 (shape [${w.shape.join(', ')}])`);
  const m = x.numel / k;
  if (m === 0 || n === 0) return;
  const ranges = weightRanges(rec.ctx, w, 64);
  if (ranges.length > 1) {
    // Bound in row ranges (a weight over one binding's size): y[row0 : row0 + rows] per range.
    if (m !== 1) throw new ShapeError(`linear: weight '${w.label}' is bound in row ranges (over ${rec.ctx.bindingLimit} bytes), which supports one input row; got M = ${m}`);
    for (const r of ranges) {
      const yr = new Tensor(y.buffer, [r.rows], 'f32', `${y.label}[${r.row0}:]`, y.byteOffset + 4 * r.row0, false);
      const br = b ? new Tensor(b.buffer, [r.rows], 'f32', `${b.label}[${r.row0}:]`, b.byteOffset + 4 * r.row0, false) : null;
      linear(rec, x.reshape([k]), r.w, br, yr, opts);
    }
    return;
  }
  const path = linearPath(m, k, w instanceof QuantizedTensor ? w.format : w.dtype, w instanceof QuantizedTensor ? w.bits : 8);
  if (path === 'matvec-generic' || path === 'matmul') {
    const has_bias = b ? 1 : 0;
    const bias = b ?? x; // bound but never read when has_bias = 0
    const generic = path === 'matvec-generic';
    const gx = Math.ceil(n / TILE);
    const gy = Math.ceil(m / TILE);
    if (!generic && (gx > 65535 || gy > 65535)) throw new ShapeError(`linear: M=${m}, N=${n} exceed the 65535×32 tile grid`);
    rec.dispatch(generic ? matvecGenericKernel : matmulKernel, {
      buffers: [x, ...weightBuffers(w), bias, x, x, y],
      params: { m, n, k, has_bias, ...NO_EPILOGUE, eps: 0 },
      constants: generic ? { ...weightConstants(w), WG: MATVEC_WG, OUT: 0 } : { ...weightConstants(w), OUT: 0 },
      workgroups: generic ? grid1d(n, GENERIC_ROWS) : [gx, gy],
      label: `linear.${generic ? 'matvec_generic' : 'matmul'}.${weightFormatTag(w)}`,
    });
    return;
  }
  dispatchMatvec(rec, x, w, b, y, null, 'store', opts);
}

/** Params of no fused epilogue (shaders/linear.wgsl, shaders/matvec_fuse.wgsl). */
const NO_EPILOGUE = { rope_rows: 0, head_dim: 2, offset: 0, has_scale: 0 };

/** What a fused linear computes around y = W · x (shaders/matvec_fuse.wgsl for one row, the matmul epilogue of shaders/linear.wgsl for several). */
export interface LinearFusion {
  /** One row only: the input is RMS-normalized first (moshi `_rms_norm` in f32): alpha f32 with K elements (e.g. [1, 1, K]), eps. */
  rmsNorm?: { alpha: Tensor; eps: number } | null;
  /**
   * 'store' y = W·x' [M, N]; 'residual' y += s ⊙ W·x' (y holds the residual stream; s = `scale`,
   * a LayerScale [N], or 1); 'gated_silu' (one row) y = silu(h[:H]) ⊙ h[H:] with h = W·x' and
   * H = N/2 (moshi ActivationGating), y [H]; 'rope' y = W·x' with RoPE on its first `rope.rows`
   * columns (see `rope`); 'gelu' (several rows) y = gelu(W·x) (exact erf, moshi's FFN 'none' gating).
   */
  out: 'store' | 'residual' | 'gated_silu' | 'rope' | 'gelu';
  /**
   * For 'rope': the rotary embedding of src/kernels/rope.ts on columns [0, rows) (the q and k of an
   * in_proj, rows = 2·D), heads of `headDim` (even), interleaved pairs, row m at position
   * `offset + m`; `freqs` f32 [headDim / 2] from ropeFreqsTensor. rows: a multiple of headDim, ≤ N.
   */
  rope?: { freqs: Tensor; headDim: number; offset: number; rows: number } | null;
  /** For 'residual': LayerScale f32 [N] (moshi `layer_scale_{1,2}.scale`), or null. */
  scale?: Tensor | null;
  /**
   * Several rows (fusedMatmul) only: each input row is LayerNorm-ed first (torch.nn.LayerNorm,
   * biased variance, two-pass; moshi `norm1` / `norm2` with norm 'layer_norm'): `params` f32 [2, K]
   * = (weight; bias) (norm.ts `packedLayerNorm`), eps.
   */
  layerNorm?: { params: Tensor; eps: number } | null;
}

const OUT_CODE = { store: 0, residual: 1, gated_silu: 2, rope: 3, gelu: 4 } as const;

function pathOf(m: number, w: WeightTensor) {
  const [, k] = w.shape;
  return linearPath(m, k, w instanceof QuantizedTensor ? w.format : w.dtype, w instanceof QuantizedTensor ? w.bits : 8);
}

/**
 * Whether {@link fusedMatvec} takes (x, w) with `out`: one input row, a weight the vectorized or
 * quantized matvec reads (linearPath 'matvec' / 'matvec-quant'), bound whole (no row ranges),
 * N % 4 == 0 for 'gated_silu', not 'gelu', and fusion not forced off
 * (GpuContext.kernelChoice.fusion). The callers (src/modules/transformer.ts) record the unfused
 * kernels otherwise.
 */
export function canFuseMatvec(rec: Recorder, x: Tensor, w: WeightTensor, out: LinearFusion['out']): boolean {
  if (rec.ctx.kernelChoice.fusion === 'off' || out === 'gelu') return false;
  const [n, k] = w.shape;
  if (x.numel !== k || (out === 'gated_silu' && n % 4 !== 0)) return false;
  const path = pathOf(1, w);
  return (path === 'matvec' || path === 'matvec-quant') && weightRanges(rec.ctx, w, 64).length === 1;
}

/**
 * Whether {@link fusedMatmul} takes (x, w) with `out`: several input rows (linearPath 'matmul'),
 * out 'store' | 'residual' | 'rope' | 'gelu', the weight bound whole, fusion not forced off.
 */
export function canFuseMatmul(rec: Recorder, x: Tensor, w: WeightTensor, out: LinearFusion['out']): boolean {
  if (rec.ctx.kernelChoice.fusion === 'off' || out === 'gated_silu') return false;
  const [, k] = w.shape;
  const m = x.numel / k;
  return Number.isInteger(m) && m > 1 && pathOf(m, w) === 'matmul' && weightRanges(rec.ctx, w, 64).length === 1;
}

/** Checks the rope / scale parts of `fusion` against w [N, K]; returns them. */
function epilogueOf(w: WeightTensor, fusion: LinearFusion): { rope: LinearFusion['rope']; scale: Tensor | null } {
  const [n] = w.shape;
  const rope = fusion.out === 'rope' ? fusion.rope ?? null : null;
  if (fusion.out === 'rope') {
    if (!rope) throw new ShapeError(`fused linear: out 'rope' needs rope { freqs, headDim, offset, rows } (weight '${w.label}')`);
    const { headDim, offset, rows } = rope;
    if (!Number.isInteger(headDim) || headDim <= 0 || headDim % 2 !== 0) throw new ShapeError(`fused linear: RoPE head_dim must be a positive even integer, got ${headDim}`);
    if (!Number.isInteger(rows) || rows < 0 || rows > n || rows % headDim !== 0) throw new ShapeError(`fused linear: RoPE rows ${rows} must be a multiple of head_dim ${headDim} and at most N = ${n} ('${w.label}')`);
    if (!Number.isInteger(offset) || offset < 0) throw new ShapeError(`fused linear: RoPE offset must be a non-negative integer, got ${offset}`);
    expectShape('fused linear RoPE freqs', rope.freqs, [headDim / 2], ['f32']);
  }
  const scale = fusion.out === 'residual' ? fusion.scale ?? null : null;
  if (scale) expectShape('fused linear LayerScale', scale, [n], ['f32']);
  return { rope, scale };
}

/** Params and the `aux` binding of an epilogue. */
function epilogueParams(x: Tensor, rope: LinearFusion['rope'], scale: Tensor | null): { aux: Tensor; params: typeof NO_EPILOGUE } {
  return {
    aux: rope?.freqs ?? scale ?? x, // bound but never read without RoPE or a scale
    params: { rope_rows: rope?.rows ?? 0, head_dim: rope?.headDim ?? 2, offset: rope?.offset ?? 0, has_scale: scale ? 1 : 0 },
  };
}

/**
 * One dispatch for a linear of one row with its neighbours fused (shaders/matvec_fuse.wgsl):
 * y = [residual + s ⊙] W · rms_norm(x) | W · x, its gated SiLU, or with RoPE on q and k; no bias.
 * The fused RMSNorm replaces moshi's `norm1` / `norm2` before a linear, the residual the
 * `x = x + update` of StreamingTransformerLayer, the gated SiLU ActivationGating's activation,
 * the RoPE the rotation of q and k in StreamingMultiheadAttention.
 * - x: f32 [K] or [1, K]; w: [N, K] as {@link linear} (vectorized / quantized matvec formats)
 * - y: f32 [N] / [1, N], or [H] / [1, H] for 'gated_silu' (H = N / 2); never x's buffer
 * @throws ShapeError for shapes that do not match, or for a case canFuseMatvec refuses.
 */
export function fusedMatvec(rec: Recorder, x: Tensor, w: WeightTensor, y: Tensor, fusion: LinearFusion): void {
  const [n, k] = expectWeight('fused matvec weight', w);
  expectShape('fused matvec input', x, x.rank === 2 ? [1, k] : [k], ['f32']);
  const outN = fusion.out === 'gated_silu' ? n / 2 : n;
  expectShape('fused matvec output', y, y.rank === 2 ? [1, outN] : [outN], ['f32']);
  if (x.buffer === y.buffer) throw new ShapeError(`fused matvec: input '${x.label}' and output '${y.label}' share a buffer; use distinct tensors`);
  if (fusion.layerNorm) throw new ShapeError(`fused matvec: an input LayerNorm is fused into the matmul (several rows) only (weight '${w.label}')`);
  if (fusion.rmsNorm) {
    const a = fusion.rmsNorm.alpha;
    expectShape('fused matvec RMSNorm alpha', a, a.shape, ['f32']);
    if (a.numel !== k) throw new ShapeError(`fused matvec: RMSNorm alpha '${a.label}' must have ${k} elements (K of '${w.label}'), got shape [${a.shape.join(', ')}]`);
  }
  const { rope, scale } = epilogueOf(w, fusion);
  if (!canFuseMatvec(rec, x, w, fusion.out)) throw new ShapeError(`fused matvec: weight '${w.label}' [${n}, ${k}] cannot take the fused '${fusion.out}' matvec here (see canFuseMatvec); record the unfused kernels`);
  dispatchMatvec(rec, x, w, null, y, fusion.rmsNorm ?? null, fusion.out, {}, rope, scale);
}

/**
 * One dispatch for a linear of several rows (shaders/linear.wgsl `matmul`) with its epilogue
 * fused: y = W·x + b, y += s ⊙ (W·x + b) (residual, optional LayerScale), RoPE on q and k of row m
 * at position offset + m, or gelu(W·x + b); with `fusion.layerNorm` each x row is LayerNorm-ed first
 * (the matmul's NORM prologue; no RMSNorm: that one is fused for one row, in the matvec).
 * - x: f32 [..., K] with M > 1 rows; w: [N, K] any format; b: f32 [N] | null; y: f32 [..., N]
 * @throws ShapeError for shapes that do not match, or a case canFuseMatmul refuses.
 */
export function fusedMatmul(rec: Recorder, x: Tensor, w: WeightTensor, b: Tensor | null, y: Tensor, fusion: LinearFusion): void {
  const [n, k] = expectWeight('fused matmul weight', w);
  expectShape('fused matmul input', x, [...x.shape.slice(0, -1), k], ['f32']);
  expectShape('fused matmul output', y, [...x.shape.slice(0, -1), n], ['f32']);
  if (b) expectShape('fused matmul bias', b, [n], ['f32']);
  if (x.buffer === y.buffer) throw new ShapeError(`fused matmul: input '${x.label}' and output '${y.label}' share a buffer; use distinct tensors`);
  if (fusion.rmsNorm) throw new ShapeError(`fused matmul: an input RMSNorm is fused for one row only (weight '${w.label}')`);
  const { rope, scale } = epilogueOf(w, fusion);
  const ln = fusion.layerNorm ?? null;
  if (ln) {
    expectShape('fused matmul LayerNorm params', ln.params, [2, k], ['f32']);
    if (!Number.isFinite(ln.eps) || ln.eps < 0) throw new ShapeError(`fused matmul: LayerNorm eps must be a finite number >= 0, got ${ln.eps}`);
  }
  if (!canFuseMatmul(rec, x, w, fusion.out)) throw new ShapeError(`fused matmul: weight '${w.label}' [${n}, ${k}] cannot take the fused '${fusion.out}' matmul here (see canFuseMatmul); record the unfused kernels`);
  const m = x.numel / k;
  const ep = epilogueParams(x, rope, scale);
  rec.dispatch(matmulKernel, {
    buffers: [x, ...weightBuffers(w), b ?? x, ep.aux, ln?.params ?? x, y],
    params: { m, n, k, has_bias: b ? 1 : 0, ...ep.params, eps: ln?.eps ?? 0 },
    constants: { ...weightConstants(w), OUT: OUT_CODE[fusion.out], NORM: ln ? 1 : 0 },
    workgroups: [Math.ceil(n / TILE), Math.ceil(m / TILE)],
    label: `linear.matmul.${weightFormatTag(w)}${ln ? '+layer_norm' : ''}+${fusion.out}`,
  });
}

/** Params.context of the fused attention without a context limit (the official `context=None`). */
const NO_CONTEXT = 0xffffffff;

/** Workgroup bytes of the fused attention prologue (att [D], att_p [heads·(cap+1)]) plus the reduction's (64 threads: 16 + 4 bytes each). */
function attendWorkgroupBytes(cache: KVCache): number {
  return 4 * cache.numHeads * cache.headDim + 4 * cache.numHeads * (cache.capacity + 1) + 20 * MATVEC_WG;
}

/**
 * Whether {@link fusedAttendMatvec} takes (cache, w): a cache that keeps its qkv rows
 * (KVCache.rows: capacity ≤ ROWS_MAX_SLOTS) with head_dim % 4 == 0, w [N, D] that the vectorized or quantized
 * matvec reads bound whole, the prologue's workgroup memory within the device limit, and fusion
 * not forced off. The caller (src/modules/transformer.ts) records attention() + out_proj otherwise.
 */
export function canFuseAttendMatvec(rec: Recorder, cache: KVCache, w: WeightTensor): boolean {
  if (rec.ctx.kernelChoice.fusion === 'off' || !cache.rows) return false;
  const [, k] = w.shape;
  if (k !== cache.numHeads * cache.headDim || cache.headDim % 4 !== 0) return false;
  if (attendWorkgroupBytes(cache) > rec.ctx.device.limits.maxComputeWorkgroupStorageSize) return false;
  const path = pathOf(1, w);
  return (path === 'matvec' || path === 'matvec-quant') && weightRanges(rec.ctx, w, 64).length === 1;
}

/**
 * One dispatch for the attention of one new step and the linear after it (shaders/matvec_fuse.wgsl
 * ATTN: each workgroup recomputes the short attention in its prologue):
 *   y = [y + s ⊙] W · attention(q, K, V)
 * the `StreamingMultiheadAttention.forward` of moshi/modules/transformer.py for T = 1 (batch 1,
 * kv_repeat 1, scale 1/sqrt(head_dim), the causal mask with `context`, also once the ring wraps) with
 * its out_proj, then StreamingTransformerLayer's `x = x + layer_scale_1(update)` for 'residual'.
 * - cache: its `rows` [cap, ≥ 3·D] f32 hold the cached steps (row = slot) and, in row
 *   cache.offset % cap, the new step's q | k | v (heads (h d), q and k already rotated: the fused
 *   in_proj wrote it into `cache.rowAt`); k and v are read as the cache stores them (f32, or rounded
 *   through f16 for dtype 'f16').
 * - w: out_proj [N, D] as {@link linear} (vectorized / quantized matvec formats), no bias
 * - y: f32 [N] / [1, N]: the residual stream for 'residual' (+= s ⊙ ...; s = `scale` [N] or 1), else overwritten
 * - context: attention window in steps, null = none
 * Advances cache.offset by 1 and marks k / v stale (attention() writes them from the rows when it next runs).
 * @throws ShapeError for shapes that do not match, or for a case canFuseAttendMatvec refuses.
 */
export function fusedAttendMatvec(rec: Recorder, a: { cache: KVCache; w: WeightTensor; y: Tensor; context: number | null; out: 'store' | 'residual'; scale?: Tensor | null }): void {
  const { cache, w, y } = a;
  const [n, k] = expectWeight('fused attend matvec weight', w);
  expectShape('fused attend matvec output', y, y.rank === 2 ? [1, n] : [n], ['f32']);
  const d = cache.numHeads * cache.headDim;
  if (k !== d) throw new ShapeError(`fused attend matvec: weight '${w.label}' [${n}, ${k}] does not take the attention output of ${cache.numHeads} heads of ${cache.headDim} (D = ${d})`);
  const context = a.context ?? NO_CONTEXT;
  if (!Number.isInteger(context) || context <= 0) throw new ShapeError(`fused attend matvec: context must be a positive integer or null, got ${a.context}`);
  const scale = a.out === 'residual' ? a.scale ?? null : null;
  if (scale) expectShape('fused attend matvec LayerScale', scale, [n], ['f32']);
  if (!canFuseAttendMatvec(rec, cache, w)) throw new ShapeError(`fused attend matvec: cache '${cache.k.label}' with weight '${w.label}' [${n}, ${k}] cannot take the fused attention here (see canFuseAttendMatvec); record attention() and the out_proj`);
  const rows = cache.rows as Tensor;
  if (rows.buffer === y.buffer) throw new ShapeError(`fused attend matvec: the qkv rows and output '${y.label}' share a buffer`);
  dispatchMatvec(rec, rows, w, null, y, null, a.out, {}, null, scale, {
    cache, params: { head_dim: cache.headDim, offset: cache.offset, cap: cache.capacity, context: Math.min(context, NO_CONTEXT), scale: 1 / Math.sqrt(cache.headDim), stride: rows.shape[1] },
  });
  cache.offset += 1;
  cache.kvStale = true;
}

/** The vectorized / quantized matvec dispatch with its fusion overrides (NORM, OUT, ATTN). */
function dispatchMatvec(
  rec: Recorder, x: Tensor, w: WeightTensor, b: Tensor | null, y: Tensor, norm: { alpha: Tensor; eps: number } | null, out: LinearFusion['out'], opts: LinearOptions,
  rope: LinearFusion['rope'] = null, scale: Tensor | null = null,
  attend: { cache: KVCache; params: { head_dim: number; offset: number; cap: number; context: number; scale: number; stride: number } } | null = null,
): void {
  const [n, k] = w.shape;
  const has_bias = b ? 1 : 0;
  const bias = b ?? x; // bound but never read when has_bias = 0
  const alpha = norm?.alpha ?? x; // bound but never read when NORM = 0
  const tag = (attend ? 'attend+' : '') + weightFormatTag(w) + (norm ? '+rms_norm' : '') + (out === 'store' ? '' : `+${out}`);
  const sg = opts.subgroups === false || rec.ctx.kernelChoice.subgroupMatvec === 'off' ? 0 : fixedSubgroupSizeOf(rec.ctx);
  const c = attend?.cache;
  const fuse: Record<string, number> = c
    ? { NORM: 0, OUT: OUT_CODE[out], ATTN: 1, KV_HALF: c.dtype === 'f16' ? 1 : 0, ATT_V: k / 4, ATT_P: c.numHeads * (c.capacity + 1) }
    : { NORM: norm ? 1 : 0, OUT: OUT_CODE[out] };
  const reduction: Record<string, number> = sg ? { SG: sg } : { WG: MATVEC_WG };
  const ep = epilogueParams(x, rope, scale);
  const fp = { eps: norm?.eps ?? 0, ...ep.params, cap: 1, context: 0, scale: 0, stride: 0, ...attend?.params };
  if (w instanceof QuantizedTensor) {
    rec.dispatch(sg ? matvecQuantSubgroupKernel : matvecQuantKernel, {
      buffers: [x, ...weightBuffers(w), bias, alpha, ep.aux, y],
      params: { n, k, kw: (k * w.bits) / 128, has_bias, ...fp },
      constants: { ...weightConstants(w), ...fuse, ...reduction },
      workgroups: grid1d(n, MATVEC_ROWS),
      label: `linear.matvec_quant${sg ? '_sg' : ''}.${tag}`,
    });
    return;
  }
  rec.dispatch(sg ? matvecSubgroupKernel : matvecKernel, {
    buffers: [x, w, bias, alpha, ep.aux, y],
    params: { n, k, kw: k / (w.dtype === 'f32' ? 4 : 8), has_bias, ...fp },
    constants: { DTYPE: DTYPE_CODE[w.dtype] as number, ...fuse, ...reduction },
    workgroups: grid1d(n, MATVEC_ROWS),
    label: `linear.matvec${sg ? '_sg' : ''}.${tag}`,
  });
}
