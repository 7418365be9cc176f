import { rope, ropeFreqs, ropeFreqsTensor } from '../../kernels/rope.ts';
import { assertClose } from '../check.ts';
import { type KernelCase, type KernelSuite } from '../kernel_case.ts';
import { Rng } from '../rng.ts';
import { ODD_SIZES } from '../sizes.ts';

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

/**
 * The odd grid: rows T ∈ ODD_SIZES × heads ∈ {1, 3, 17, 63}, with even head dims, trailing
 * untouched columns, position offsets (0 up to 10^6, the kernel's sin/cos reduction is exact for
 * angles below 1.6e6) and both models' max_period rotated through the grid. Head dims shrink
 * (down to 2) so a case rotates at most ~300k values (T = 2179 gets few heads, small dims).
 */
function ropeOddGrid(): KernelCase[] {
  const cases: KernelCase[] = [];
  const headCounts = [1, 3, 17, 63];
  const dims = [2, 64, 8, 126, 16, 128, 4, 256, 30];
  const offsets = [1, 2999, 0, 100_000, 17, 315, 65_535, 1_000_000, 2178, 12_345];
  const extras = [0, 1, 3, -1]; // -1: a fused q|k|v row (width 3·heads·Dh, v untouched)
  let seed = 100;
  let n = 0;
  ODD_SIZES.forEach((rows, ti) => {
    headCounts.forEach((heads, hi) => {
      let headDim = dims[(ti * 3 + hi) % dims.length];
      while (headDim > 2 && rows * heads * headDim > 300_000) headDim = Math.max(2, 2 * Math.floor(headDim / 4));
      if (rows * heads * headDim > 300_000) return;
      const extra = extras[(ti + hi * 3) % extras.length];
      const width = extra < 0 ? 3 * heads * headDim : heads * headDim + extra;
      const offset = offsets[(ti * 4 + hi) % offsets.length];
      const maxPeriod = n++ % 2 === 0 ? 10000 : 100000;
      cases.push(ropeCase(rows, width, heads, headDim, offset, maxPeriod, seed++));
    });
  });
  return cases;
}

export const ropeSuite: KernelSuite = {
  name: 'rope',
  tests: [
    ...ropeOddGrid(),
    // Rows with large offsets for both max periods (Mimi 10000, Moshi 100000), odd T.
    ropeCase(2179, 2 * 8 + 1, 2, 8, 100_000, 100000, 200),
    ropeCase(315, 3 * 2 * 64, 2, 64, 2999, 100000, 201),
    ropeCase(63, 17 * 4 * 3, 17, 4, 100_000, 10000, 202),
    ropeCase(17, 63 * 16 + 3, 63, 16, 1_500_000, 10000, 203),
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
