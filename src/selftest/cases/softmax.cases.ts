import { softmax } from '../../kernels/softmax.ts';
import { assertClose } from '../check.ts';
import { type KernelCase, type KernelSuite, sentinelTensor } from '../kernel_case.ts';
import { Rng } from '../rng.ts';
import { ODD_SIZES } from '../sizes.ts';

/** CPU row softmax in f64. x: [M, N]. */
export function softmaxRef(x: Float32Array, m: number, n: number): Float32Array {
  const y = new Float32Array(m * n);
  for (let r = 0; r < m; r++) {
    let mx = -Infinity;
    for (let j = 0; j < n; j++) mx = Math.max(mx, x[r * n + j]);
    let s = 0;
    for (let j = 0; j < n; j++) s += Math.exp(x[r * n + j] - mx);
    for (let j = 0; j < n; j++) y[r * n + j] = Math.exp(x[r * n + j] - mx) / s;
  }
  return y;
}

function softmaxCase(m: number, n: number, seed: number, shift = 0): KernelCase {
  return {
    name: `softmax M=${m} N=${n}${shift ? ` shift=${shift}` : ''}`,
    setup(ctx) {
      const rng = new Rng(seed);
      // Large shifts would overflow exp without the max subtraction.
      const xs = Float32Array.from(rng.normals(m * n, 4), (v) => v + shift);
      if (n >= 2) xs[1] = -Infinity; // a masked entry (row 0 keeps a finite one)
      const x = ctx.upload(xs, [m, n], 'f32', 'x');
      const y = sentinelTensor(ctx, [m, n], 'y');
      return {
        record: (rec) => softmax(rec, x, y),
        async check(c) {
          assertClose(`softmax[${m},${n}]`, await c.readF32(y), softmaxRef(xs, m, n), { atol: 1e-6, rtol: 1e-5, shape: [m, n] });
        },
        flops: m * n * 5,
        bytes: m * n * 8,
        tensors: [x, y],
      };
    },
  };
}

export const softmaxSuite: KernelSuite = {
  name: 'softmax',
  tests: [
    ...ODD_SIZES.flatMap((n, j) => [1, 3, 17].map((m) => softmaxCase(m, n, 7 * j + m))),
    softmaxCase(63, 250, 77),
    softmaxCase(5, 315, 78, 1000),
    softmaxCase(3, 17, 79, -1000),
    softmaxCase(65537, 1, 80),
  ],
  bench: [softmaxCase(32, 3000, 1), softmaxCase(8 * 250, 250, 2)],
};
