import { unary, type UnaryOp } from '../../kernels/unary.ts';
import { assertClose } from '../check.ts';
import { type KernelCase, type KernelSuite, sentinelTensor } from '../kernel_case.ts';
import { Rng } from '../rng.ts';
import { ODD_SIZES } from '../sizes.ts';

/** CPU references in f64. */
export function erf(x: number): number {
  // Abramowitz-Stegun 7.1.26 is too coarse; use a series/continued fraction good to 1e-15.
  const t = Math.abs(x);
  if (t < 2.5) {
    let sum = t;
    let term = t;
    for (let n = 1; n < 60; n++) {
      term *= (-t * t) / n;
      sum += term / (2 * n + 1);
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction for large |x|.
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (t + f);
  const erfc = Math.exp(-t * t) / Math.sqrt(Math.PI) / (t + f);
  return Math.sign(x) * (1 - erfc);
}

export const UNARY_REF: Record<UnaryOp, (x: number) => number> = {
  elu: (x) => (x > 0 ? x : Math.expm1(x)),
  gelu: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
  silu: (x) => x / (1 + Math.exp(-x)),
};

function unaryCase(op: UnaryOp, n: number, seed: number): KernelCase {
  return {
    name: `${op} n=${n}`,
    setup(ctx) {
      const xs = new Rng(seed).normals(n, 3);
      const x = ctx.upload(xs, [n], 'f32', 'x');
      const y = sentinelTensor(ctx, [n], 'y');
      return {
        record: (rec) => unary(rec, op, x, y),
        async check(c) {
          const got = await c.readF32(y);
          assertClose(`${op}[${n}]`, got, Array.from(xs, UNARY_REF[op]), { atol: 2e-6, rtol: 2e-6 });
        },
        flops: n * 8,
        bytes: n * 8,
        tensors: [x, y],
      };
    },
  };
}

const OPS: UnaryOp[] = ['elu', 'gelu', 'silu'];
export const unarySuite: KernelSuite = {
  name: 'unary',
  tests: OPS.flatMap((op, k) => ODD_SIZES.map((n, j) => unaryCase(op, n, 100 * k + j))),
  bench: OPS.map((op) => unaryCase(op, 512 * 1920, 7)),
};
