import { rope, ropeFreqs, ropeFreqsTensor } from '../../src/kernels/rope.ts';
import { assertClose } from '../harness/check.ts';
import { type KernelCase, type KernelSuite } from '../harness/kernel_case.ts';
import { Rng } from '../harness/rng.ts';

/**
 * CPU RoPE of moshi/modules/rope.py (interleave=True): the angle is formed in f32 as torch does
 * (f32 freqs times f32 position), cos/sin and the rotation in f64. x: [T, W], heads from column 0.
 */
export function ropeRef(x: Float32Array, rows: number, width: number, heads: number, headDim: number, offset: number, maxPeriod: number): Float32Array {
  const freqs = ropeFreqs(headDim, maxPeriod);
  const y = Float32Array.from(x);
  for (let t = 0; t < rows; t++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < headDim / 2; i++) {
        const th = Math.fround(freqs[i] * Math.fround(offset + t));
        const o = t * width + h * headDim + 2 * i;
        const re = x[o];
        const im = x[o + 1];
        y[o] = re * Math.cos(th) - im * Math.sin(th);
        y[o + 1] = re * Math.sin(th) + im * Math.cos(th);
      }
    }
  }
  return y;
}

function ropeCase(rows: number, width: number, heads: number, headDim: number, offset: number, maxPeriod: number, seed: number): KernelCase {
  return {
    name: `rope T=${rows} W=${width} heads=${heads} Dh=${headDim} offset=${offset} max_period=${maxPeriod}`,
    setup(ctx) {
      const xs = new Rng(seed).normals(rows * width, 2);
      const x = ctx.upload(xs, [rows, width], 'f32', 'x');
      const freqs = ropeFreqsTensor(ctx, headDim, maxPeriod);
      return {
        record: (rec) => rope(rec, x, freqs, { heads, headDim, offset }),
        async check(c) {
          const want = ropeRef(xs, rows, width, heads, headDim, offset, maxPeriod);
          // Columns past heads·headDim must stay untouched (checked exactly by the same compare).
          assertClose(`rope[${rows},${width}]@${offset}`, await c.readF32(x), want, { atol: 2e-6, rtol: 2e-6, shape: [rows, width] });
        },
        flops: rows * heads * headDim * 3,
        bytes: rows * heads * headDim * 8,
        tensors: [x], // the frequency table is cached per context
      };
    },
  };
}

export const ropeSuite: KernelSuite = {
  name: 'rope',
  tests: [
    ropeCase(1, 2, 1, 2, 0, 10000, 1),
    ropeCase(3, 17, 2, 8, 5, 10000, 2),
    ropeCase(17, 3 * 64, 8, 16, 0, 10000, 3), // q|k of a fused [T, 3D] row, v untouched
    ropeCase(63, 315, 2, 126, 1000, 10000, 4),
    ropeCase(5, 256, 2, 128, 3001, 100000, 5),
    ropeCase(3, 64, 1, 64, 250_000, 10000, 6), // a long stream: angles far beyond 2π
    ropeCase(2, 40, 4, 10, 65_536, 10000, 7),
  ],
  bench: [ropeCase(1, 3 * 4096, 64, 128, 1234, 10000, 1), ropeCase(250, 3 * 512, 16, 64, 0, 10000, 2)],
};
