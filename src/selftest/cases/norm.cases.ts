import { layerNorm, rmsNorm } from '../../kernels/norm.ts';
import { assertClose } from '../check.ts';
import { type KernelCase, type KernelSuite, sentinelTensor } from '../kernel_case.ts';
import { Rng } from '../rng.ts';
import { ODD_SIZES } from '../sizes.ts';

/** CPU LayerNorm in f64 (torch.nn.LayerNorm, biased variance). x: [M, D]. */
export function layerNormRef(x: Float32Array, w: Float32Array, b: Float32Array, m: number, d: number, eps: number): Float32Array {
  const y = new Float32Array(m * d);
  for (let r = 0; r < m; r++) {
    let s = 0;
    for (let i = 0; i < d; i++) s += x[r * d + i];
    const mean = s / d;
    let q = 0;
    for (let i = 0; i < d; i++) q += (x[r * d + i] - mean) ** 2;
    const rstd = 1 / Math.sqrt(q / d + eps);
    for (let i = 0; i < d; i++) y[r * d + i] = (x[r * d + i] - mean) * rstd * w[i] + b[i];
  }
  return y;
}

/** CPU RMSNorm in f64 (moshi `_rms_norm`): y = x · alpha / sqrt(eps + mean(x²)). x: [M, D]. */
export function rmsNormRef(x: Float32Array, alpha: Float32Array, m: number, d: number, eps: number): Float32Array {
  const y = new Float32Array(m * d);
  for (let r = 0; r < m; r++) {
    let q = 0;
    for (let i = 0; i < d; i++) q += x[r * d + i] ** 2;
    const rs = 1 / Math.sqrt(eps + q / d);
    for (let i = 0; i < d; i++) y[r * d + i] = x[r * d + i] * alpha[i] * rs;
  }
  return y;
}

function normCase(kind: 'layer' | 'rms', m: number, d: number, seed: number, eps: number): KernelCase {
  return {
    name: `${kind}_norm M=${m} D=${d} eps=${eps}`,
    setup(ctx) {
      const rng = new Rng(seed);
      // A per-row offset makes the mean matter (LayerNorm must subtract it accurately).
      const xs = new Float32Array(m * d);
      for (let r = 0; r < m; r++) {
        const off = rng.normal() * 3;
        for (let i = 0; i < d; i++) xs[r * d + i] = off + rng.normal() * 2;
      }
      const ws = Float32Array.from(rng.normals(d, 0.1), (v) => 1 + v);
      const bs = rng.normals(d, 0.1);
      const x = ctx.upload(xs, [m, d], 'f32', 'x');
      const w = ctx.upload(ws, kind === 'rms' ? [1, 1, d] : [d], 'f32', 'w');
      const b = ctx.upload(bs, [d], 'f32', 'b');
      const y = sentinelTensor(ctx, [m, d], 'y');
      return {
        record: (rec) => (kind === 'layer' ? layerNorm(rec, x, w, b, y, eps) : rmsNorm(rec, x, w, y, eps)),
        async check(c) {
          const got = await c.readF32(y);
          const want = kind === 'layer' ? layerNormRef(xs, ws, bs, m, d, eps) : rmsNormRef(xs, ws, m, d, eps);
          assertClose(`${kind}Norm[${m},${d}]`, got, want, { atol: 1e-5, rtol: 1e-5, shape: [m, d] });
        },
        flops: m * d * 6,
        bytes: m * d * 8 + d * 8,
        tensors: [x, w, b, y],
      };
    },
  };
}

const tests: KernelCase[] = [];
ODD_SIZES.forEach((d, j) => {
  for (const m of [1, 3, 17]) {
    tests.push(normCase('layer', m, d, 10 * j + m, 1e-5));
    tests.push(normCase('rms', m, d, 500 + 10 * j + m, 1e-8));
  }
});
tests.push(normCase('layer', 63, 64, 91, 1e-5), normCase('rms', 63, 315, 92, 1e-5));
// More than 65535 rows: workgroups fold into y.
tests.push(normCase('rms', 65601, 2, 93, 1e-8));

export const normSuite: KernelSuite = {
  name: 'norm',
  tests,
  bench: [normCase('layer', 250, 512, 1, 1e-5), normCase('rms', 1, 4096, 2, 1e-8), normCase('rms', 8, 1024, 3, 1e-8)],
};
