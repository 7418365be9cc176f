import { roundThrough } from '../../gpu/dtype.ts';
import type { Tensor } from '../../gpu/index.ts';
import { KVCache, attention } from '../../kernels/attention.ts';
import { gatedSilu } from '../../kernels/elementwise.ts';
import { linear, linearPath } from '../../kernels/linear.ts';
import { assertClose } from '../check.ts';
import { type KernelCase, type KernelSuite, sentinelTensor } from '../kernel_case.ts';
import { Rng } from '../rng.ts';
import { RingAttentionRef, attendedPairs, attendsLabel } from './attention.cases.ts';
import { linearRef } from './linear.cases.ts';

/**
 * Composite cases: several kernels recorded into ONE recording, checked stage by stage (the
 * intermediates too, so a failure names the stage that broke) against float64 CPU references
 * over the weights as the GPU holds them (rounded through the half dtype, as in linear.cases.ts).
 */

type WDType = 'f32' | 'f16' | 'bf16';

const silu = (v: number) => v / (1 + Math.exp(-v));

/** Tolerance of an f32-accumulated result, relative to its scale (as linear.cases.ts). */
const TOL = { scaleTol: 1e-4, atol: 1e-6 };

/**
 * moshi/modules/gating.py `ActivationGating` with activation silu (gating_forward_kernel), batch
 * folded into M: h = x·W_inᵀ [M, 2H]; h.view(M, 2, H): g = silu(h[:, :H]) · h[:, H:];
 * y = g·W_outᵀ [M, D]. No biases. All in f64 (x and the rounded weights as f32 inputs).
 */
export function gatedFfnRef(x: Float32Array, wIn: Float32Array, wOut: Float32Array, m: number, d: number, hid: number): { h: Float64Array; g: Float64Array; y: Float64Array } {
  const h = new Float64Array(m * 2 * hid);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < 2 * hid; j++) {
      let s = 0;
      for (let t = 0; t < d; t++) s += x[i * d + t] * wIn[j * d + t];
      h[i * 2 * hid + j] = s;
    }
  }
  const g = new Float64Array(m * hid);
  for (let i = 0; i < m; i++) for (let j = 0; j < hid; j++) g[i * hid + j] = silu(h[i * 2 * hid + j]) * h[i * 2 * hid + hid + j];
  const y = new Float64Array(m * d);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < d; j++) {
      let s = 0;
      for (let t = 0; t < hid; t++) s += g[i * hid + t] * wOut[j * hid + t];
      y[i * d + j] = s;
    }
  }
  return { h, g, y };
}

/**
 * Gated FFN x [M, D] (or [D] for M = 1 on some) -> linear_in [2H, D] -> gated silu -> linear_out
 * [D, H] -> y [M, D], the three dispatches of `Transformer.ffn` in one recording. Weights ~
 * N(0, 1/K) so every stage stays O(1).
 */
function gatedFfnCase(dtype: WDType, m: number, d: number, hid: number, seed: number, vectorX = false): KernelCase {
  const xShape = vectorX ? [d] : [m, d];
  const lead = xShape.slice(0, -1);
  const name = `gated_ffn ${dtype} x[${xShape.join(',')}] D=${d} H=${hid} (in ${linearPath(m, d, dtype)}, out ${linearPath(m, hid, dtype)})`;
  return {
    name,
    setup(ctx) {
      const rng = new Rng(seed);
      const xs = rng.normals(m * d);
      const wIns = roundThrough(rng.normals(2 * hid * d, 1 / Math.sqrt(d)), dtype);
      const wOuts = roundThrough(rng.normals(d * hid, 1 / Math.sqrt(hid)), dtype);
      const x = ctx.upload(xs, xShape, 'f32', 'x');
      const wIn = ctx.upload(wIns, [2 * hid, d], dtype, 'linear_in.weight');
      const wOut = ctx.upload(wOuts, [d, hid], dtype, 'linear_out.weight');
      const h = sentinelTensor(ctx, [m, 2 * hid], 'h');
      const g = sentinelTensor(ctx, [m, hid], 'g');
      const y = sentinelTensor(ctx, [...lead, d], 'y');
      return {
        record(rec) {
          // linear's x and y share leading dims: view h / g with x's leading dims for M = 1 vectors.
          linear(rec, x, wIn, null, vectorX ? h.reshape([2 * hid]) : h);
          gatedSilu(rec, h, g);
          linear(rec, vectorX ? g.reshape([hid]) : g, wOut, null, y);
        },
        async check(c) {
          const want = gatedFfnRef(xs, wIns, wOuts, m, d, hid);
          const label = `gated_ffn ${dtype} M=${m} D=${d} H=${hid}`;
          assertClose(`${label} h = linear_in(x)`, await c.readF32(h), want.h, { ...TOL, shape: [m, 2 * hid] });
          assertClose(`${label} g = silu(h[:, :H])·h[:, H:]`, await c.readF32(g), want.g, { ...TOL, shape: [m, hid] });
          assertClose(`${label} y = linear_out(g)`, await c.readF32(y), want.y, { ...TOL, shape: [m, d] });
        },
        flops: 6 * m * d * hid + 6 * m * hid,
        bytes: 8 * m * d + (dtype === 'f32' ? 4 : 2) * 3 * d * hid + 4 * m * 5 * hid,
        tensors: [x, wIn, wOut, h, g, y],
      };
    },
  };
}

/**
 * The odd grid M ∈ {1, 3, 17, 63} × D ∈ {1, 3, 17, 63} with H a Latin square over {3, 17, 63, 315}
 * (every (M, D), (M, H) and (D, H) pair meets once) and the dtype cycling so each dtype meets M = 1
 * and M > 1; plus D or H = 2179, and 16-byte aligned K for the vectorized matvec.
 */
function ffnGrid(): KernelCase[] {
  const ms = [1, 3, 17, 63];
  const ds = [1, 3, 17, 63];
  const hs = [3, 17, 63, 315];
  const dtypes: WDType[] = ['f32', 'bf16', 'f16'];
  const cases: KernelCase[] = [];
  let seed = 1;
  ms.forEach((m, mi) => {
    ds.forEach((d, di) => {
      cases.push(gatedFfnCase(dtypes[(2 * mi + di) % 3], m, d, hs[(mi + di) % 4], seed++, m === 1 && di % 2 === 1));
    });
  });
  cases.push(
    gatedFfnCase('bf16', 1, 3, 2179, 100),
    gatedFfnCase('f32', 3, 2179, 17, 101),
    gatedFfnCase('f16', 17, 17, 2179, 102),
    gatedFfnCase('bf16', 1, 2179, 3, 103, true),
    gatedFfnCase('f32', 63, 17, 2179, 106),
    // The largest odd-grid corner on the matmul path, in both half dtypes.
    gatedFfnCase('bf16', 63, 63, 315, 107),
    gatedFfnCase('f16', 17, 63, 315, 108),
    // Aligned K on both linears (D % 8 = 0, H % 8 = 0): the vectorized / subgroup matvec.
    gatedFfnCase('bf16', 1, 64, 24, 104, true),
    gatedFfnCase('f32', 1, 16, 12, 105),
  );
  return cases;
}

interface InProjSpec {
  dtype: WDType;
  /** Heads × head dim = D. */
  heads: number;
  dh: number;
  cap: number;
  context: number | null;
  maxPeriod: number | null;
  /** Steps per call, recorded in order into one recording. */
  chunks: number[];
  seed: number;
}

/**
 * In_proj + streaming attention + out_proj (moshi/modules/transformer.py
 * `StreamingMultiheadAttention.forward`, batch 1, bias-free in_proj [3D, D] with rows q | k | v,
 * out_proj [D, D]), several chunks through one ring KV cache in one recording:
 * qkv = x·W_inᵀ [T, 3D] -> attention (RoPE in place on qkv) -> attn [T, D] -> y = attn·W_outᵀ.
 * Reference: f64 in_proj (linearRef), `RingAttentionRef` (attention.cases.ts), f64 out_proj.
 */
function inProjAttentionCase(s: InProjSpec): KernelCase {
  const d = s.heads * s.dh;
  const total = s.chunks.reduce((a, b) => a + b, 0);
  const name = `in_proj+attention+out_proj ${s.dtype} D=${d} (${s.heads}x${s.dh}) cap=${s.cap} context=${s.context} rope=${s.maxPeriod ?? 'none'} chunks=${s.chunks.join(',')}: ${attendsLabel(s)}`;
  return {
    name,
    setup(ctx) {
      const rng = new Rng(s.seed);
      const wIns = roundThrough(rng.normals(3 * d * d, 1.5 / Math.sqrt(d)), s.dtype);
      const wOuts = roundThrough(rng.normals(d * d, 1 / Math.sqrt(d)), s.dtype);
      const xs = s.chunks.map((t) => rng.normals(t * d));
      const wIn = ctx.upload(wIns, [3 * d, d], s.dtype, 'in_proj_weight');
      const wOut = ctx.upload(wOuts, [d, d], s.dtype, 'out_proj.weight');
      const x = xs.map((v, i) => ctx.upload(v, [s.chunks[i], d], 'f32', `x${i}`));
      const qkv = s.chunks.map((t, i) => sentinelTensor(ctx, [t, 3 * d], `qkv${i}`));
      const attn = s.chunks.map((t, i) => sentinelTensor(ctx, [t, d], `attn${i}`));
      const y = s.chunks.map((t, i) => sentinelTensor(ctx, [t, d], `y${i}`));
      const cache = new KVCache(ctx, { numHeads: s.heads, headDim: s.dh, capacity: s.cap, label: 'kv' });
      const rope = s.maxPeriod === null ? null : { maxPeriod: s.maxPeriod };
      return {
        record(rec) {
          cache.reset();
          s.chunks.forEach((_, i) => {
            linear(rec, x[i], wIn, null, qkv[i]);
            attention(rec, { qkv: qkv[i], out: attn[i], cache, numHeads: s.heads, context: s.context, rope });
            linear(rec, attn[i], wOut, null, y[i]);
          });
        },
        async check(c) {
          if (cache.offset !== total) throw new Error(`cache.offset ${cache.offset}, expected ${total}`);
          const ref = new RingAttentionRef(s.heads, s.dh, s.cap, s.context, s.maxPeriod);
          for (let i = 0; i < s.chunks.length; i++) {
            const t = s.chunks[i];
            const label = `${name} chunk ${i} (T=${t})`;
            // qkv is rotated in place by the attention's RoPE: check the attention and final outputs.
            const qkvRef = Float32Array.from(linearRef(xs[i], wIns, null, t, d, 3 * d));
            const attnRef = ref.step(qkvRef, t);
            const yRef = linearRef(attnRef, wOuts, null, t, d, d);
            assertClose(`${label} attn`, await c.readF32(attn[i]), attnRef, { atol: 2e-5, rtol: 1e-4, shape: [t, d] });
            assertClose(`${label} y = out_proj(attn)`, await c.readF32(y[i]), yRef, { scaleTol: 1e-4, atol: 1e-5, shape: [t, d] });
          }
        },
        // in_proj (2·3·d²) and out_proj (2·d²) per step, 4·d per attended (query, slot) pair.
        flops: 8 * total * d * d + 4 * d * attendedPairs(s),
        bytes: (s.dtype === 'f32' ? 4 : 2) * 4 * d * d + s.chunks.reduce((a, t) => a + t * d * 24 + 2 * s.heads * Math.min(s.cap, total) * s.dh * 4, 0),
        tensors: [wIn, wOut, ...x, ...qkv, ...attn, ...y, { destroy: () => cache.destroy() } as unknown as Tensor],
      };
    },
  };
}

const inProjTests: KernelCase[] = [
  // T = 1 (matvec in_proj / out_proj) and T = 3 (matmul) chunks that wrap small caches.
  inProjAttentionCase({ dtype: 'f32', heads: 3, dh: 4, cap: 5, context: 5, maxPeriod: 10000, chunks: [3, 1, 3, 3, 1, 1, 3], seed: 1 }),
  inProjAttentionCase({ dtype: 'bf16', heads: 3, dh: 4, cap: 3, context: 3, maxPeriod: 100000, chunks: [1, 3, 1, 1, 3, 3], seed: 2 }),
  inProjAttentionCase({ dtype: 'bf16', heads: 17, dh: 2, cap: 7, context: 7, maxPeriod: 10000, chunks: [1, 3, 3, 1, 3, 1], seed: 3 }),
  inProjAttentionCase({ dtype: 'f16', heads: 17, dh: 2, cap: 4, context: 2, maxPeriod: 10000, chunks: [3, 1, 3, 1, 1, 3], seed: 4 }),
  // A window shorter than the cache.
  inProjAttentionCase({ dtype: 'f32', heads: 2, dh: 6, cap: 6, context: 4, maxPeriod: 10000, chunks: [3, 3, 1, 3, 1], seed: 5 }),
  // Odd head dim, no RoPE (depformer-like: no context, capacity = steps, no wrap).
  inProjAttentionCase({ dtype: 'bf16', heads: 3, dh: 5, cap: 7, context: null, maxPeriod: null, chunks: [1, 3, 3], seed: 6 }),
  // Aligned D (vectorized matvec at T = 1).
  inProjAttentionCase({ dtype: 'bf16', heads: 2, dh: 8, cap: 3, context: 3, maxPeriod: 10000, chunks: [1, 3, 1, 1], seed: 7 }),
];

export const ffnSuite: KernelSuite = {
  name: 'ffn',
  tests: [...ffnGrid(), ...inProjTests],
  bench: [
    // Depformer FFN (dim 1024, hidden 2816) and Mimi-sized attention block, one step.
    gatedFfnCase('bf16', 1, 1024, 2816, 1, true),
    inProjAttentionCase({ dtype: 'f32', heads: 8, dh: 64, cap: 250, context: 250, maxPeriod: 10000, chunks: [1], seed: 1 }),
  ],
};
