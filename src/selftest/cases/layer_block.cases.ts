import { roundThrough } from '../../gpu/dtype.ts';
import type { Tensor } from '../../gpu/index.ts';
import { KVCache } from '../../kernels/attention.ts';
import { BlockStream, attendBlock, blockParts, blockThreads, blockVectors, ffnBlock, sumBlock, type LayerBlockShape } from '../../kernels/layer_block.ts';
import { ropeFreqsTensor } from '../../kernels/rope.ts';
import { assertClose } from '../check.ts';
import { type KernelCase, type KernelSuite, sentinelTensor } from '../kernel_case.ts';
import { Rng } from '../rng.ts';
import { RingAttentionRef } from './attention.cases.ts';
import { layerNormRef, rmsNormRef } from './norm.cases.ts';
import { erf } from './unary.cases.ts';

/**
 * Layer blocks (src/kernels/layer_block.ts): one transformer layer as the attention block, the FFN
 * block and the sum, over several calls in ONE recording (the cache carries over), against a float64
 * CPU reference of moshi/modules/transformer.py `StreamingTransformerLayer` (norm1 → in_proj → RoPE →
 * ring attention → out_proj → + LayerScale ⊙ ·, norm2 → FFN → + LayerScale ⊙ ·) over the weights as
 * the GPU holds them. The workgroup size is the device's (blockThreads: 4 on CPU adapters, 64 on
 * GPUs), so the kernel page checks the path a GPU user's device takes.
 */

type WDType = 'f32' | 'bf16' | 'f16';

interface BlockSpec {
  dtype: WDType;
  heads: number;
  dh: number;
  /** FFN hidden size (silu: H of linear_in [2H, D]; none: F of linear1). */
  hidden: number;
  gating: 'silu' | 'none';
  norm: 'rms' | 'layer';
  rope: boolean;
  layerScale: boolean;
  cap: number;
  context: number | null;
  kvDtype: 'f32' | 'f16';
  /** Rows per call, recorded in order. */
  chunks: number[];
  seed: number;
}

const EPS = 1e-5;
const silu = (v: number) => v / (1 + Math.exp(-v));
const gelu = (v: number) => 0.5 * v * (1 + erf(v / Math.SQRT2));

/** y [t, n] = x [t, k] · Wᵀ in f64. */
function matmulRef(x: ArrayLike<number>, w: ArrayLike<number>, t: number, n: number, k: number): Float64Array {
  const y = new Float64Array(t * n);
  for (let i = 0; i < t; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let e = 0; e < k; e++) s += x[i * k + e] * w[j * k + e];
      y[i * n + j] = s;
    }
  }
  return y;
}

function blockCase(s: BlockSpec): KernelCase {
  const d = s.heads * s.dh;
  const steps = s.chunks.reduce((a, b) => a + b, 0);
  const name = `layer blocks ${s.dtype} D=${d} (${s.heads}×${s.dh}) ${s.gating === 'silu' ? `silu H=${s.hidden}` : `gelu F=${s.hidden}`} ${s.norm}_norm${s.rope ? ' rope' : ''}${s.layerScale ? ' layer_scale' : ''} ${s.kvDtype} ring ${s.cap}${s.context ? ` ctx ${s.context}` : ''} calls [${s.chunks.join(',')}]`;
  const inRows = (s.gating === 'silu' ? 2 : 1) * s.hidden;
  return {
    name,
    setup(ctx) {
      const rng = new Rng(s.seed);
      const wq = (n: number, k: number) => roundThrough(rng.normals(n * k, 1 / Math.sqrt(k)), s.dtype);
      const inProj = wq(3 * d, d);
      const outProj = wq(d, d);
      const wIn = wq(inRows, d);
      const wOut = wq(d, s.hidden);
      const vec = (m: number, sd: number) => Float32Array.from(rng.normals(d, sd), (v) => m + v);
      const n1w = vec(1, 0.1);
      const n2w = vec(1, 0.1);
      const n1b = s.norm === 'layer' ? vec(0, 0.1) : null;
      const n2b = s.norm === 'layer' ? vec(0, 0.1) : null;
      const s1 = s.layerScale ? rng.uniforms(d, 0.05, 0.3) : null;
      const s2 = s.layerScale ? rng.uniforms(d, 0.05, 0.3) : null;
      const xs = s.chunks.map((t) => rng.normals(t * d, 1));
      const up = (v: Float32Array, shape: number[], dtype: WDType | 'f32', label: string) => ctx.upload(v, shape, dtype, label);
      const tensors: Tensor[] = [];
      const keep = <T extends Tensor>(t: T) => (tensors.push(t), t);
      const w = {
        inProj: keep(up(inProj, [3 * d, d], s.dtype, 'in_proj')),
        outProj: keep(up(outProj, [d, d], s.dtype, 'out_proj')),
        wIn: keep(up(wIn, [inRows, d], s.dtype, 'linear_in')),
        wOut: keep(up(wOut, [d, s.hidden], s.dtype, 'linear_out')),
      };
      const vt = (v: Float32Array | null, label: string) => (v ? keep(up(v, [d], 'f32', label)) : null);
      const v = blockVectors(ctx, {
        alpha1: vt(n1w, 'norm1') as Tensor, alpha2: vt(n2w, 'norm2') as Tensor, bias1: vt(n1b, 'norm1.bias'), bias2: vt(n2b, 'norm2.bias'),
        scale1: vt(s1, 'layer_scale_1'), scale2: vt(s2, 'layer_scale_2'), freqs: s.rope ? ropeFreqsTensor(ctx, s.dh, 10000) : null,
      }, 'block_vectors');
      tensors.push(v.vecs);
      const cache = new KVCache(ctx, { numHeads: s.heads, headDim: s.dh, capacity: s.cap, label: 'layer_block.kv', dtype: s.kvDtype });
      const stream = new BlockStream(ctx, d, blockParts(s.heads, s.hidden), Math.max(...s.chunks), 'layer_block.stream');
      const xIn = s.chunks.map((t, i) => keep(ctx.upload(xs[i], [t, d], 'f32', `x${i}`)));
      const ys = s.chunks.map((t, i) => keep(sentinelTensor(ctx, [t, d], `y${i}`)));
      const shape = (t: number): LayerBlockShape => ({ cache, ...w, gating: s.gating, rope: s.rope, layerNorm: s.norm === 'layer', t });
      return {
        record(rec) {
          cache.reset();
          s.chunks.forEach((t, i) => {
            stream.start(rec, xIn[i]);
            attendBlock(rec, stream, shape(t), { v, eps: EPS, context: s.context });
            ffnBlock(rec, stream, shape(t), { v, eps: EPS });
            sumBlock(rec, stream, ys[i]);
          });
        },
        async check(c) {
          const ring = new RingAttentionRef(s.heads, s.dh, s.cap, s.context, s.rope ? 10000 : null, s.kvDtype);
          const norm = (x: Float32Array, wt: Float32Array, b: Float32Array | null, t: number) => (b ? layerNormRef(x, wt, b, t, d, EPS) : rmsNormRef(x, wt, t, d, EPS));
          const wg = blockThreads(c).WG;
          for (const [i, t] of s.chunks.entries()) {
            const x = Float32Array.from(xs[i]);
            const qkv = Float32Array.from(matmulRef(norm(x, n1w, n1b, t), inProj, t, 3 * d, d));
            const u = matmulRef(ring.step(qkv, t), outProj, t, d, d);
            for (let e = 0; e < t * d; e++) x[e] += (s1 ? s1[e % d] : 1) * u[e];
            const h = matmulRef(norm(x, n2w, n2b, t), wIn, t, inRows, d);
            const act = new Float64Array(t * s.hidden);
            for (let r = 0; r < t; r++) {
              for (let j = 0; j < s.hidden; j++) {
                act[r * s.hidden + j] = s.gating === 'silu' ? silu(h[r * inRows + j]) * h[r * inRows + s.hidden + j] : gelu(h[r * inRows + j]);
              }
            }
            const u2 = matmulRef(act, wOut, t, d, s.hidden);
            const want = Float64Array.from(x, (xe, e) => xe + (s2 ? s2[e % d] : 1) * u2[e]);
            // An f16 cache rounds k and v computed in f32 here, in f64 there: one f16 ulp apart at a
            // rounding boundary (as attention.cases.ts allows for its f16 cache).
            const tol = s.kvDtype === 'f16' ? { atol: 2e-3, rtol: 2e-3 } : { atol: 1e-5, scaleTol: 1e-5, rtol: 1e-4 };
            assertClose(`${name} (workgroup ${wg}) call ${i}`, await c.readF32(ys[i]), want, { ...tol, shape: [t, d] });
          }
        },
        flops: 2 * steps * (3 * d * d + d * d + inRows * d + d * s.hidden),
        bytes: steps * 8 * d + (s.dtype === 'f32' ? 4 : 2) * (4 * d * d + inRows * d + d * s.hidden) * s.chunks.length,
        tensors: [...tensors, ...(cache.kv ? [cache.kv] : [cache.k, cache.v]), cache.part, ...(cache.rows ? [cache.rows] : []), stream.st, stream.spareRw, stream.spareRo, stream.out],
      };
    },
  };
}

const DEP: Omit<BlockSpec, 'dtype' | 'seed'> = { heads: 4, dh: 8, hidden: 88, gating: 'silu', norm: 'rms', rope: false, layerScale: false, cap: 8, context: null, kvDtype: 'f32', chunks: [1, 1, 1, 1, 1, 1, 1, 1] };
const MIMI: Omit<BlockSpec, 'dtype' | 'seed'> = { heads: 4, dh: 16, hidden: 128, gating: 'none', norm: 'layer', rope: true, layerScale: true, cap: 20, context: 20, kvDtype: 'f32', chunks: [2, 2, 5, 1, 2, 2, 2, 2, 2, 2, 2] };

export const layerBlockSuite: KernelSuite = {
  name: 'layer_block',
  tests: [
    // The depformer: RMSNorm, silu gating, the short cache's qkv rows, one step per call.
    blockCase({ ...DEP, dtype: 'f32', seed: 1 }),
    blockCase({ ...DEP, dtype: 'bf16', layerScale: true, kvDtype: 'f16', seed: 2 }),
    // RoPE over the qkv rows, odd head count and width.
    blockCase({ ...DEP, heads: 3, dh: 6, hidden: 37, rope: true, cap: 6, context: 6, dtype: 'f16', chunks: [1, 1, 1, 1, 1, 1, 1, 1, 1], seed: 3 }),
    // Mimi: LayerNorm, GELU, RoPE, LayerScale, T rows per call over a key / value ring that wraps.
    blockCase({ ...MIMI, dtype: 'f32', seed: 4 }),
    blockCase({ ...MIMI, dtype: 'bf16', kvDtype: 'f16', context: 7, seed: 5 }),
  ],
  bench: [
    blockCase({ ...DEP, heads: 16, dh: 64, hidden: 2816, cap: 8, dtype: 'bf16', chunks: [1], seed: 10 }),
    blockCase({ ...MIMI, heads: 8, dh: 64, hidden: 2048, cap: 250, context: 250, dtype: 'f32', chunks: [2], seed: 11 }),
  ],
};
