import { roundThrough } from '../../gpu/dtype.ts';
import type { Tensor, WeightTensor } from '../../gpu/index.ts';
import { type MatvecFusion, canFuseMatvec, fusedMatvec } from '../../kernels/linear.ts';
import { ropeFreqs, ropeFreqsTensor } from '../../kernels/rope.ts';
import { assertClose } from '../check.ts';
import { type KernelCase, type KernelSuite, sentinelTensor } from '../kernel_case.ts';
import { Rng } from '../rng.ts';
import { type QuantSpec, makeQuantized, specName } from './linear_quant.cases.ts';

type Weights = 'f32' | 'f16' | 'bf16' | QuantSpec;

/**
 * CPU reference of fusedMatvec in f64 over the weights as the GPU holds them (`w` [N, K],
 * dequantized / rounded): x' = x · alpha / sqrt(eps + mean(x²)) under rmsNorm (moshi
 * `_rms_norm`), h = W · x', then 'store' h, 'residual' y0 + h, 'gated_silu' silu(h[:H]) · h[H:],
 * 'rope' h with its first `rope.rows` values rotated (moshi apply_rope, interleaved pairs).
 */
export function fusedMatvecRef(x: Float32Array, w: Float32Array, n: number, k: number, norm: { alpha: Float32Array; eps: number } | null, out: MatvecFusion['out'], y0: Float32Array | null, rope: { headDim: number; maxPeriod: number; offset: number; rows: number } | null = null): Float64Array {
  const xin = new Float64Array(k);
  let scale = 1;
  if (norm) {
    let ss = 0;
    for (let i = 0; i < k; i++) ss += x[i] * x[i];
    scale = 1 / Math.sqrt(norm.eps + ss / k);
  }
  for (let i = 0; i < k; i++) xin[i] = x[i] * (norm ? norm.alpha[i] * scale : 1);
  const h = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    let s = 0;
    for (let i = 0; i < k; i++) s += w[r * k + i] * xin[i];
    h[r] = s;
  }
  if (out === 'rope' && rope) {
    const f = ropeFreqs(rope.headDim, rope.maxPeriod);
    for (let r = 0; r < rope.rows; r += 2) {
      const th = Math.fround(f[(r % rope.headDim) / 2] * rope.offset);
      const [re, im] = [h[r], h[r + 1]];
      h[r] = re * Math.cos(th) - im * Math.sin(th);
      h[r + 1] = re * Math.sin(th) + im * Math.cos(th);
    }
  }
  if (out === 'store' || out === 'rope') return h;
  if (out === 'residual') return h.map((v, r) => v + (y0 as Float32Array)[r]);
  const H = n / 2;
  return Float64Array.from({ length: H }, (_, j) => (h[j] / (1 + Math.exp(-h[j]))) * h[H + j]);
}

const TOL = { scaleTol: 2e-4, atol: 1e-6 };

function wName(w: Weights): string {
  return typeof w === 'string' ? w : specName(w);
}

/**
 * One fused matvec case: random N(0, 1) x, alpha in [0.5, 1.5), the residual y0; `subgroups`
 * false forces the workgroup-memory reduction. Checks the path really is the fused one
 * (canFuseMatvec), then the values.
 */
function fusedCase(wt: Weights, k: number, n: number, norm: boolean, out: MatvecFusion['out'], seed: number, subgroups = true): KernelCase {
  // 'rope': N = 3·D rows (q | k | v) with heads of 4 (small) or 64 (bench), position 1234.
  const headDim = n % 192 === 0 ? 64 : 4;
  const ropeSpec = out === 'rope' ? { headDim, maxPeriod: 10000, offset: 1234, rows: (2 * n) / 3 } : null;
  return {
    name: `fused ${wName(wt)} K=${k} N=${n}${norm ? ' rms_norm' : ''} ${out}${ropeSpec ? ` (head_dim ${headDim})` : ''}${subgroups ? '' : ' (no subgroups)'}`,
    setup(ctx) {
      const rng = new Rng(seed);
      const xs = rng.normals(k);
      let w: WeightTensor;
      let deq: Float32Array;
      if (typeof wt === 'string') {
        deq = roundThrough(rng.normals(n * k, 1 / Math.sqrt(k)), wt);
        w = ctx.upload(deq, [n, k], wt, 'w');
      } else {
        ({ w, deq } = makeQuantized(ctx, rng, wt, n, k));
      }
      const alphas = Float32Array.from({ length: k }, () => 0.5 + rng.next());
      const eps = 1e-5;
      const outN = out === 'gated_silu' ? n / 2 : n;
      const y0 = out === 'residual' ? rng.normals(n) : null;
      const x = ctx.upload(xs, [1, k], 'f32', 'x');
      const alpha = ctx.upload(alphas, [1, 1, k], 'f32', 'alpha');
      const y: Tensor = y0 ? ctx.upload(y0, [1, n], 'f32', 'y') : sentinelTensor(ctx, [1, outN], 'y');
      const prevChoice = ctx.kernelChoice;
      return {
        record: (rec) => {
          if (!canFuseMatvec(rec, x, w, out)) throw new Error(`fused case ${wName(wt)} K=${k} N=${n} ${out}: canFuseMatvec refused it`);
          ctx.kernelChoice = subgroups ? prevChoice : { ...prevChoice, subgroupMatvec: 'off' };
          try {
            const rope = ropeSpec && { ...ropeSpec, freqs: ropeFreqsTensor(ctx, ropeSpec.headDim, ropeSpec.maxPeriod) };
            fusedMatvec(rec, x, w, y, { rmsNorm: norm ? { alpha, eps } : null, out, rope });
          } finally {
            ctx.kernelChoice = prevChoice;
          }
        },
        async check(c) {
          const got = await c.readF32(y);
          assertClose(`fused matvec ${wName(wt)} K=${k} N=${n} ${norm ? 'rms_norm ' : ''}${out}`, got, fusedMatvecRef(xs, deq, n, k, norm ? { alpha: alphas, eps } : null, out, y0, ropeSpec), { ...TOL, shape: [1, outN] });
        },
        flops: 2 * n * k,
        bytes: 4 * k + w.byteLength + 4 * outN,
        tensors: [x, alpha, y, w as Tensor],
      };
    },
  };
}

const FORMATS: Weights[] = ['f32', 'f16', 'bf16', { format: 'q8' }, { format: 'affine', bits: 4, groupSize: 32 }, { format: 'affine', bits: 8, groupSize: 64 }];

/** Every format × (rms_norm store, residual, rms_norm gated_silu) with both reductions, at K/N not multiples of the workgroup. */
function grid(): KernelCase[] {
  const cases: KernelCase[] = [];
  let seed = 11;
  for (const wt of FORMATS) {
    const k = typeof wt !== 'string' && wt.format === 'affine' && wt.groupSize === 64 ? 320 : 288;
    for (const subgroups of [true, false]) {
      cases.push(fusedCase(wt, k, 63, true, 'store', seed++, subgroups));
      cases.push(fusedCase(wt, k, 37, false, 'residual', seed++, subgroups));
      cases.push(fusedCase(wt, k, 84, true, 'gated_silu', seed++, subgroups));
      cases.push(fusedCase(wt, k, 20, false, 'gated_silu', seed++, subgroups));
      cases.push(fusedCase(wt, k, 36, true, 'rope', seed++, subgroups));
    }
  }
  return cases;
}

/** Moshi 7B's decode shapes: the temporal layer's norm + QKV, norm + gating, and the depformer's. */
function bench(): KernelCase[] {
  return [
    fusedCase('bf16', 4096, 3 * 4096, true, 'rope', 1),
    fusedCase('bf16', 4096, 2 * 11264, true, 'gated_silu', 2),
    fusedCase('bf16', 11264, 4096, false, 'residual', 3),
    fusedCase({ format: 'affine', bits: 4, groupSize: 32 }, 4096, 2 * 11264, true, 'gated_silu', 4),
    fusedCase('bf16', 1024, 2 * 2816, true, 'gated_silu', 5),
  ];
}

export const matvecFusedSuite: KernelSuite = { name: 'matvec_fused', tests: grid(), bench: bench() };
