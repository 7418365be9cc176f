import { addInPlace, addScaledInPlace, gatedSilu, transpose2d } from '../../kernels/elementwise.ts';
import type { Tensor } from '../../gpu/index.ts';
import { assertClose } from '../check.ts';
import { type KernelCase, type KernelSuite, sentinelTensor } from '../kernel_case.ts';
import { Rng } from '../rng.ts';
import { ODD_SIZES } from '../sizes.ts';

const silu = (v: number) => v / (1 + Math.exp(-v));

function addCase(n: number, seed: number): KernelCase {
  return {
    name: `add n=${n}`,
    setup(ctx) {
      const rng = new Rng(seed);
      const ys = rng.normals(n, 2);
      const bs = rng.normals(n, 2);
      const y = ctx.upload(ys, [n], 'f32', 'y');
      const b = ctx.upload(bs, [n], 'f32', 'b');
      return {
        record: (rec) => addInPlace(rec, y, b),
        async check(c) {
          assertClose(`add[${n}]`, await c.readF32(y), Array.from(ys, (v, i) => v + bs[i]), { atol: 1e-6, rtol: 1e-6 });
        },
        flops: n,
        bytes: 12 * n,
        tensors: [y, b],
      };
    },
  };
}

function addScaledCase(m: number, d: number, seed: number): KernelCase {
  return {
    name: `add_scaled M=${m} D=${d}`,
    setup(ctx) {
      const rng = new Rng(seed);
      const ys = rng.normals(m * d, 2);
      const bs = rng.normals(m * d, 2);
      const ss = rng.uniforms(d, 0.05, 0.3);
      const y = ctx.upload(ys, [m, d], 'f32', 'y');
      const b = ctx.upload(bs, [m, d], 'f32', 'b');
      const s = ctx.upload(ss, [d], 'f32', 'scale');
      return {
        record: (rec) => addScaledInPlace(rec, y, b, s),
        async check(c) {
          const want = Array.from(ys, (v, i) => v + ss[i % d] * bs[i]);
          assertClose(`add_scaled[${m},${d}]`, await c.readF32(y), want, { atol: 1e-6, rtol: 1e-6, shape: [m, d] });
        },
        flops: 2 * m * d,
        bytes: 12 * m * d,
        tensors: [y, b, s],
      };
    },
  };
}

function gatedSiluCase(m: number, h: number, seed: number): KernelCase {
  return {
    name: `gated_silu M=${m} H=${h}`,
    setup(ctx) {
      const hs = new Rng(seed).normals(m * 2 * h, 3);
      const x = ctx.upload(hs, [m, 2 * h], 'f32', 'h');
      const y = sentinelTensor(ctx, [m, h], 'y');
      return {
        record: (rec) => gatedSilu(rec, x, y),
        async check(c) {
          const want = new Float32Array(m * h);
          for (let r = 0; r < m; r++) for (let j = 0; j < h; j++) want[r * h + j] = silu(hs[r * 2 * h + j]) * hs[r * 2 * h + h + j];
          assertClose(`gated_silu[${m},${h}]`, await c.readF32(y), want, { atol: 1e-6, rtol: 2e-6, shape: [m, h] });
        },
        flops: 6 * m * h,
        bytes: 12 * m * h,
        tensors: [x, y],
      };
    },
  };
}

function transposeCase(r: number, c: number, seed: number): KernelCase {
  return {
    name: `transpose R=${r} C=${c}`,
    setup(ctx) {
      const xs = new Rng(seed).normals(r * c);
      const x = ctx.upload(xs, [r, c], 'f32', 'x');
      const y: Tensor = sentinelTensor(ctx, [c, r], 'y');
      return {
        record: (rec) => transpose2d(rec, x, y),
        async check(g) {
          const want = new Float32Array(r * c);
          for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) want[j * r + i] = xs[i * c + j];
          assertClose(`transpose[${r},${c}]`, await g.readF32(y), want, { atol: 0, shape: [c, r] });
        },
        flops: 0,
        bytes: 8 * r * c,
        tensors: [x, y],
      };
    },
  };
}

const tests: KernelCase[] = [
  ...ODD_SIZES.map((n, j) => addCase(n, j)),
  // 64 · 65535 + 1 elements: workgroups fold into y.
  addCase(64 * 65535 + 1, 99),
  ...ODD_SIZES.flatMap((d, j) => [1, 17].map((m) => addScaledCase(m, d, 20 + j * 3 + m))),
  ...ODD_SIZES.flatMap((h, j) => [1, 3].map((m) => gatedSiluCase(m, h, 40 + j * 3 + m))),
  gatedSiluCase(17, 63, 60),
  ...ODD_SIZES.flatMap((c, j) => [1, 3, 63].map((r) => transposeCase(r, c, 70 + j * 5 + r))),
  transposeCase(64, 72, 90),
];

export const elementwiseSuite: KernelSuite = {
  name: 'elementwise',
  tests,
  bench: [addScaledCase(250, 512, 1), gatedSiluCase(1, 11264, 2), transposeCase(512, 250, 3), addCase(4096, 4)],
};
