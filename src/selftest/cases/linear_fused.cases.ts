import { roundThrough } from '../../gpu/dtype.ts';
import type { Tensor, WeightTensor } from '../../gpu/index.ts';
import { KVCache, kvRowStride } from '../../kernels/attention.ts';
import { type LinearFusion, canFuseAttendMatvec, canFuseMatmul, canFuseMatvec, fusedAttendMatvec, fusedMatmul, fusedMatvec } from '../../kernels/linear.ts';
import { ropeFreqs, ropeFreqsTensor } from '../../kernels/rope.ts';
import { assertClose } from '../check.ts';
import { type KernelCase, type KernelSuite, sentinelTensor } from '../kernel_case.ts';
import { Rng } from '../rng.ts';
import { type QuantSpec, makeQuantized, specName } from './linear_quant.cases.ts';

type Weights = 'f32' | 'f16' | 'bf16' | QuantSpec;

/**
 * CPU reference of fusedMatvec / fusedMatmul in f64 over the weights as the GPU holds them (`w`
 * [N, K], dequantized / rounded), for each of the M rows of x [M, K]: x' = x · alpha /
 * sqrt(eps + mean(x²)) under rmsNorm (moshi `_rms_norm`), x' = LayerNorm(x) · weight + bias under
 * layerNorm (torch.nn.LayerNorm, biased variance), h = W · x', then 'store' h, 'residual'
 * y0 + s ⊙ h (s = scale or 1), 'gated_silu' silu(h[:H]) · h[H:], 'gelu' gelu(h) (exact erf),
 * 'rope' h with its first `rope.rows` values of row m rotated at position offset + m (moshi
 * apply_rope, interleaved pairs).
 */
export function fusedLinearRef(
  x: Float32Array, w: Float32Array, m: number, n: number, k: number,
  norm: { alpha: Float32Array; eps: number } | null, out: LinearFusion['out'], y0: Float32Array | null,
  rope: { headDim: number; maxPeriod: number; offset: number; rows: number } | null = null, scale: Float32Array | null = null,
  layerNorm: { weight: Float32Array; bias: Float32Array; eps: number } | null = null,
): Float64Array {
  const outN = out === 'gated_silu' ? n / 2 : n;
  const y = new Float64Array(m * outN);
  for (let r = 0; r < m; r++) {
    let xr: ArrayLike<number> = x.subarray(r * k, (r + 1) * k);
    if (layerNorm) {
      // torch.nn.LayerNorm: biased variance, in f64 here.
      let mean = 0;
      for (let i = 0; i < k; i++) mean += xr[i];
      mean /= k;
      let v = 0;
      for (let i = 0; i < k; i++) v += (xr[i] - mean) ** 2;
      const rstd = 1 / Math.sqrt(v / k + layerNorm.eps);
      const src = xr;
      xr = Float64Array.from({ length: k }, (_, i) => (src[i] - mean) * rstd * layerNorm.weight[i] + layerNorm.bias[i]);
    }
    let inv = 1;
    if (norm) {
      let ss = 0;
      for (let i = 0; i < k; i++) ss += xr[i] * xr[i];
      inv = 1 / Math.sqrt(norm.eps + ss / k);
    }
    const h = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let i = 0; i < k; i++) s += w[j * k + i] * xr[i] * (norm ? norm.alpha[i] * inv : 1);
      h[j] = s;
    }
    if (out === 'rope' && rope) {
      const f = ropeFreqs(rope.headDim, rope.maxPeriod);
      for (let j = 0; j < rope.rows; j += 2) {
        const th = Math.fround(f[(j % rope.headDim) / 2] * (rope.offset + r));
        const [re, im] = [h[j], h[j + 1]];
        h[j] = re * Math.cos(th) - im * Math.sin(th);
        h[j + 1] = re * Math.sin(th) + im * Math.cos(th);
      }
    }
    for (let j = 0; j < outN; j++) {
      const o = r * outN + j;
      if (out === 'residual') y[o] = (y0 as Float32Array)[o] + (scale ? scale[j] : 1) * h[j];
      else if (out === 'gated_silu') y[o] = (h[j] / (1 + Math.exp(-h[j]))) * h[outN + j];
      else if (out === 'gelu') y[o] = 0.5 * h[j] * (1 + erf(h[j] / Math.SQRT2));
      else y[o] = h[j];
    }
  }
  return y;
}

/** erf in f64 (Abramowitz-Stegun 7.1.26 is too coarse for 2e-4: a series / continued fraction). */
function erf(v: number): number {
  const z = Math.abs(v);
  let r: number;
  if (z < 3) {
    // Maclaurin series: erf z = 2/√π Σ (-1)^n z^(2n+1) / (n! (2n+1))
    let term = z;
    let sum = z;
    for (let i = 1; i < 60; i++) {
      term *= (-z * z) / i;
      sum += term / (2 * i + 1);
    }
    r = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    // erfc z ~ e^{-z²}/(z√π) (1 - 1/(2z²) + 3/(4z⁴)): error < 1e-6 for z ≥ 3
    r = 1 - (Math.exp(-z * z) / (z * Math.sqrt(Math.PI))) * (1 - 1 / (2 * z * z) + 3 / (4 * z ** 4));
  }
  return v < 0 ? -r : r;
}

const TOL = { scaleTol: 2e-4, atol: 1e-6 };

function wName(w: Weights): string {
  return typeof w === 'string' ? w : specName(w);
}

/**
 * One fused linear case on M rows (fusedMatvec for M = 1, fusedMatmul for M > 1): random N(0, 1)
 * x (plus `xOffset`, a common offset that E[x²] - E[x]² would lose in f32), alpha in [0.5, 1.5),
 * the residual y0, a LayerScale for 'residual' with `scaled`, the LayerNorm prologue with `layerNorm`;
 * `subgroups` false forces the workgroup-memory reduction. Checks that the fused path takes the
 * case (canFuseMatvec / canFuseMatmul), then the values.
 */
function fusedCase(wt: Weights, k: number, n: number, norm: boolean, out: LinearFusion['out'], seed: number, o: { subgroups?: boolean; m?: number; scaled?: boolean; layerNorm?: boolean; xOffset?: number } = {}): KernelCase {
  const m = o.m ?? 1;
  const lnOn = o.layerNorm ?? false;
  const subgroups = o.subgroups ?? true;
  // 'rope': N = 3·D rows (q | k | v) with heads of 4 (small) or 64 (bench), position 1234 (+ row).
  const headDim = n % 192 === 0 ? 64 : 4;
  const ropeSpec = out === 'rope' ? { headDim, maxPeriod: 10000, offset: 1234, rows: (2 * n) / 3 } : null;
  return {
    name: `fused ${wName(wt)} M=${m} K=${k} N=${n}${norm ? ' rms_norm' : ''}${lnOn ? ` layer_norm (x offset ${o.xOffset ?? 0})` : ''} ${out}${o.scaled ? ' (LayerScale)' : ''}${ropeSpec ? ` (head_dim ${headDim})` : ''}${subgroups ? '' : ' (no subgroups)'}`,
    setup(ctx) {
      const rng = new Rng(seed);
      const xs = rng.normals(m * k).map((v) => v + (o.xOffset ?? 0));
      let w: WeightTensor;
      let deq: Float32Array;
      if (typeof wt === 'string') {
        deq = roundThrough(rng.normals(n * k, 1 / Math.sqrt(k)), wt);
        w = ctx.upload(deq, [n, k], wt, 'w');
      } else {
        ({ w, deq } = makeQuantized(ctx, rng, wt, n, k));
      }
      const alphas = Float32Array.from({ length: k }, () => 0.5 + rng.next());
      const scales = o.scaled ? Float32Array.from({ length: n }, () => 0.1 + rng.next()) : null;
      const eps = 1e-5;
      const lnHost = lnOn ? { weight: Float32Array.from({ length: k }, () => 0.5 + rng.next()), bias: rng.normals(k, 0.5), eps } : null;
      const lnParams = lnHost ? ctx.upload(Float32Array.from([...lnHost.weight, ...lnHost.bias]), [2, k], 'f32', 'layer_norm params') : null;
      const outN = out === 'gated_silu' ? n / 2 : n;
      const y0 = out === 'residual' ? rng.normals(m * n) : null;
      const x = ctx.upload(xs, [m, k], 'f32', 'x');
      const alpha = ctx.upload(alphas, [1, 1, k], 'f32', 'alpha');
      const scale = scales ? ctx.upload(scales, [n], 'f32', 'scale') : null;
      const y: Tensor = y0 ? ctx.upload(y0, [m, n], 'f32', 'y') : sentinelTensor(ctx, [m, outN], 'y');
      const prevChoice = ctx.kernelChoice;
      return {
        record: (rec) => {
          const can = m === 1 ? canFuseMatvec(rec, x, w, out) : canFuseMatmul(rec, x, w, out);
          if (!can) throw new Error(`fused case ${wName(wt)} M=${m} K=${k} N=${n} ${out}: the fused path refused it`);
          ctx.kernelChoice = subgroups ? prevChoice : { ...prevChoice, subgroupMatvec: 'off' };
          try {
            const rope = ropeSpec && { ...ropeSpec, freqs: ropeFreqsTensor(ctx, ropeSpec.headDim, ropeSpec.maxPeriod) };
            const fusion = { rmsNorm: norm ? { alpha, eps } : null, out, rope, scale, layerNorm: lnParams && { params: lnParams, eps } };
            if (m === 1) fusedMatvec(rec, x, w, y, fusion);
            else fusedMatmul(rec, x, w, null, y, fusion);
          } finally {
            ctx.kernelChoice = prevChoice;
          }
        },
        async check(c) {
          const got = await c.readF32(y);
          const want = fusedLinearRef(xs, deq, m, n, k, norm ? { alpha: alphas, eps } : null, out, y0, ropeSpec, scales, lnHost);
          assertClose(`fused linear ${wName(wt)} M=${m} K=${k} N=${n} ${norm ? 'rms_norm ' : ''}${lnOn ? 'layer_norm ' : ''}${out}`, got, want, { ...TOL, shape: [m, outN] });
        },
        flops: 2 * m * n * k,
        bytes: 4 * m * k + w.byteLength + 4 * m * outN,
        tensors: [x, alpha, y, w as Tensor, ...(scale ? [scale] : []), ...(lnParams ? [lnParams] : [])],
      };
    },
  };
}

/**
 * CPU reference (f64) of the attention of one new step at absolute position `offset` over the
 * qkv rows [cap, stride] (row = ring slot, q | k | v first; moshi StreamingMultiheadAttention.forward, T = 1, batch 1):
 * slot j holds position pos_k = δ ≤ 0 ? offset + δ : offset + δ - cap (δ = j - offset % cap),
 * attended iff pos_k ≥ 0 and offset - pos_k < context (null: no limit); scores q · k / sqrt(head_dim),
 * softmax, Σ p · v. `half`: k and v rounded through f16 (the packed-half cache). Returns [D].
 */
export function attendRowsRef(rows: Float32Array, stride: number, cap: number, heads: number, dh: number, offset: number, context: number | null, half: boolean): Float64Array {
  const d = heads * dh;
  const kv = half ? roundThrough(rows, 'f16') : rows;
  const e = offset % cap;
  const nSlots = Math.min(offset + 1, cap);
  const out = new Float64Array(d);
  for (let h = 0; h < heads; h++) {
    const s: number[] = [];
    for (let j = 0; j < nSlots; j++) {
      const delta = j - e;
      const posK = delta <= 0 ? offset + delta : offset + delta - cap;
      if (posK < 0 || (context !== null && offset - posK >= context)) {
        s.push(-Infinity);
        continue;
      }
      let dot = 0;
      for (let t = 0; t < dh; t++) dot += rows[e * stride + h * dh + t] * kv[j * stride + d + h * dh + t];
      s.push(dot / Math.sqrt(dh));
    }
    const m = Math.max(...s);
    const p = s.map((v) => Math.exp(v - m));
    const l = p.reduce((a, b) => a + b, 0);
    for (let t = 0; t < dh; t++) {
      let a = 0;
      for (let j = 0; j < nSlots; j++) a += p[j] * kv[j * stride + 2 * d + h * dh + t];
      out[h * dh + t] = a / l;
    }
  }
  return out;
}

/**
 * One fusedAttendMatvec case: a cache of `cap` slots, `heads` × `dh`, whose qkv rows hold random
 * N(0, 1) steps (rows never written: NaN, so reading one fails the case) and the new step at
 * `offset`; out_proj w [N, D] of format `wt`; 'residual' with a random y0 and optional LayerScale
 * or 'store'. Checks y against attendRowsRef + fusedLinearRef and that the cache advanced.
 */
function fusedAttendCase(wt: Weights, o: { heads: number; dh: number; cap: number; offset: number; context: number | null; kv: 'f32' | 'f16'; n?: number; out: 'store' | 'residual'; scaled?: boolean; subgroups?: boolean }, seed: number): KernelCase {
  const d = o.heads * o.dh;
  const n = o.n ?? d;
  const subgroups = o.subgroups ?? true;
  const label = `fused attend+${wName(wt)} heads ${o.heads}×${o.dh} cap ${o.cap} offset ${o.offset}${o.context !== null ? ` context ${o.context}` : ''} kv ${o.kv} N=${n} ${o.out}${o.scaled ? ' (LayerScale)' : ''}${subgroups ? '' : ' (no subgroups)'}`;
  return {
    name: label,
    setup(ctx) {
      const rng = new Rng(seed);
      const stride = kvRowStride(o.heads, o.dh);
      const rowsHost = rng.normals(o.cap * stride);
      const filled = Math.min(o.offset + 1, o.cap);
      rowsHost.fill(Number.NaN, filled * stride);
      for (let j = 0; j < filled; j++) rowsHost.fill(Number.NaN, j * stride + 3 * d, (j + 1) * stride); // row padding
      let w: WeightTensor;
      let deq: Float32Array;
      if (typeof wt === 'string') {
        deq = roundThrough(rng.normals(n * d, 1 / Math.sqrt(d)), wt);
        w = ctx.upload(deq, [n, d], wt, 'w');
      } else {
        ({ w, deq } = makeQuantized(ctx, rng, wt, n, d));
      }
      const scales = o.scaled ? Float32Array.from({ length: n }, () => 0.1 + rng.next()) : null;
      const y0 = o.out === 'residual' ? rng.normals(n) : null;
      const cache = new KVCache(ctx, { numHeads: o.heads, headDim: o.dh, capacity: o.cap, label: 'kv', dtype: o.kv });
      const rowsIn = ctx.upload(rowsHost, [o.cap, stride], 'f32', 'rows in');
      const scale = scales ? ctx.upload(scales, [n], 'f32', 'scale') : null;
      const y: Tensor = y0 ? ctx.upload(y0, [1, n], 'f32', 'y') : sentinelTensor(ctx, [1, n], 'y');
      const prevChoice = ctx.kernelChoice;
      return {
        record: (rec) => {
          rec.copy(rowsIn, cache.rows as Tensor);
          cache.offset = o.offset;
          if (!canFuseAttendMatvec(rec, cache, w)) throw new Error(`${label}: the fused path refused it`);
          ctx.kernelChoice = subgroups ? prevChoice : { ...prevChoice, subgroupMatvec: 'off' };
          try {
            fusedAttendMatvec(rec, { cache, w, y, context: o.context, out: o.out, scale });
          } finally {
            ctx.kernelChoice = prevChoice;
          }
        },
        async check(c) {
          if (cache.offset !== o.offset + 1 || !cache.kvStale) throw new Error(`${label}: cache offset ${cache.offset} (want ${o.offset + 1}), kvStale ${cache.kvStale} (want true)`);
          const got = await c.readF32(y);
          const att = attendRowsRef(rowsHost, stride, o.cap, o.heads, o.dh, o.offset, o.context, o.kv === 'f16');
          const want = fusedLinearRef(Float32Array.from(att), deq, 1, n, d, null, o.out, y0, null, scales);
          // f16 k / v: WGSL's f32 -> f16 conversion may round to either neighbour (1 ulp = 2^-11), as in attention.cases.ts.
          assertClose(label, got, want, { ...(o.kv === 'f16' ? { scaleTol: 1e-3, atol: 1e-6 } : TOL), shape: [1, n] });
        },
        flops: 2 * n * d + 4 * o.cap * d,
        bytes: 4 * o.cap * stride + w.byteLength + 4 * n,
        tensors: [rowsIn, y, w as Tensor, cache.k, cache.v, cache.part, cache.rows as Tensor, ...(scale ? [scale] : [])],
      };
    },
  };
}

const FORMATS: Weights[] = ['f32', 'f16', 'bf16', { format: 'q8' }, { format: 'affine', bits: 4, groupSize: 32 }, { format: 'affine', bits: 8, groupSize: 64 }];

/**
 * One row: every format × (rms_norm store, residual with and without LayerScale, rms_norm
 * gated_silu, gated_silu, rms_norm rope, attention + out_proj) with both reductions; several rows (the matmul epilogue):
 * store, residual with LayerScale, rope, gelu, in f32 (Mimi), bf16 and q4; K and N not multiples
 * of the workgroup.
 */
function grid(): KernelCase[] {
  const cases: KernelCase[] = [];
  let seed = 11;
  for (const wt of FORMATS) {
    const k = typeof wt !== 'string' && wt.format === 'affine' && wt.groupSize === 64 ? 320 : 288;
    for (const subgroups of [true, false]) {
      cases.push(fusedCase(wt, k, 63, true, 'store', seed++, { subgroups }));
      cases.push(fusedCase(wt, k, 37, false, 'residual', seed++, { subgroups }));
      cases.push(fusedCase(wt, k, 37, false, 'residual', seed++, { subgroups, scaled: true }));
      cases.push(fusedCase(wt, k, 84, true, 'gated_silu', seed++, { subgroups }));
      cases.push(fusedCase(wt, k, 20, false, 'gated_silu', seed++, { subgroups }));
      cases.push(fusedCase(wt, k, 36, true, 'rope', seed++, { subgroups }));
    }
  }
  // Attention + out_proj (the depformer's short cache): every format, both reductions, a partly
  // filled cache with f16 k / v (residual, LayerScale) and a wrapped ring with a context limit (store).
  for (const wt of FORMATS) {
    for (const subgroups of [true, false]) {
      cases.push(fusedAttendCase(wt, { heads: 4, dh: 32, cap: 8, offset: 5, context: null, kv: 'f16', out: 'residual', scaled: true, subgroups }, seed++));
      cases.push(fusedAttendCase(wt, { heads: 2, dh: 64, cap: 8, offset: 11, context: 6, kv: 'f32', out: 'store', subgroups }, seed++));
    }
  }
  cases.push(fusedAttendCase('f32', { heads: 2, dh: 32, cap: 4, offset: 0, context: null, kv: 'f32', n: 37, out: 'residual' }, seed++));
  // The tiny goldens' depformer (D = 32, rows padded from 96 to 128 elements); head_dim 8, context 2.
  cases.push(fusedAttendCase('bf16', { heads: 2, dh: 16, cap: 4, offset: 2, context: null, kv: 'f16', out: 'residual', scaled: true }, seed++));
  cases.push(fusedAttendCase('f32', { heads: 3, dh: 8, cap: 3, offset: 4, context: 2, kv: 'f16', out: 'store' }, seed++));
  cases.push(fusedAttendCase('bf16', { heads: 16, dh: 64, cap: 8, offset: 7, context: null, kv: 'f16', out: 'residual' }, seed++));
  const several: Weights[] = ['f32', 'bf16', { format: 'affine', bits: 4, groupSize: 32 }];
  for (const wt of several) {
    for (const m of [2, 5, 33]) {
      cases.push(fusedCase(wt, 96, 37, false, 'store', seed++, { m }));
      cases.push(fusedCase(wt, 96, 37, false, 'residual', seed++, { m, scaled: true }));
      cases.push(fusedCase(wt, 96, 36, false, 'rope', seed++, { m }));
      cases.push(fusedCase(wt, 96, 45, false, 'gelu', seed++, { m }));
      // The LayerNorm prologue (Mimi's norm1 + in_proj + RoPE, norm2 + linear1 + GELU), a K % 4 tail, a large common offset.
      cases.push(fusedCase(wt, 96, 36, false, 'rope', seed++, { m, layerNorm: true }));
      cases.push(fusedCase(wt, 96, 45, false, 'gelu', seed++, { m, layerNorm: true, xOffset: 300 }));
      if (wt === 'f32') cases.push(fusedCase(wt, 97, 37, false, 'store', seed++, { m, layerNorm: true, xOffset: -1000 }));
    }
  }
  return cases;
}

/** Moshi 7B's decode shapes (the temporal layer's norm + QKV + RoPE, norm + gating, the depformer's) and Mimi's two-row ones. */
function bench(): KernelCase[] {
  return [
    fusedCase('bf16', 4096, 3 * 4096, true, 'rope', 1),
    fusedCase('bf16', 4096, 2 * 11264, true, 'gated_silu', 2),
    fusedCase('bf16', 11264, 4096, false, 'residual', 3),
    fusedCase({ format: 'affine', bits: 4, groupSize: 32 }, 4096, 2 * 11264, true, 'gated_silu', 4),
    fusedCase('bf16', 1024, 2 * 2816, true, 'gated_silu', 5),
    fusedAttendCase('bf16', { heads: 16, dh: 64, cap: 8, offset: 7, context: null, kv: 'f16', out: 'residual' }, 10),
    fusedCase('f32', 512, 3 * 512, false, 'rope', 6, { m: 2 }),
    fusedCase('f32', 512, 2048, false, 'gelu', 7, { m: 2 }),
    fusedCase('f32', 512, 3 * 512, false, 'rope', 8, { m: 2, layerNorm: true }),
    fusedCase('f32', 512, 2048, false, 'gelu', 9, { m: 2, layerNorm: true }),
  ];
}

export const linearFusedSuite: KernelSuite = { name: 'linear_fused', tests: grid(), bench: bench() };
