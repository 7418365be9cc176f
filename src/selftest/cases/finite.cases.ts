import { finiteCheck } from '../../kernels/finite.ts';
import type { KernelCase, KernelSuite } from '../kernel_case.ts';
import { Rng } from '../rng.ts';
import { ODD_SIZES } from '../sizes.ts';

/**
 * finite_check: three checks OR bits 1, 2, 4 into one flag word (pre-set to 8, which must
 * survive): x0 clean (huge finite values and subnormals included), x1 with one non-finite value
 * at `at`, x2 clean. Expected flags: 8 | 2.
 */
function finiteCase(n: number, bad: number, at: number, seed: number): KernelCase {
  return {
    name: `n=${n} ${bad} at ${at}`,
    setup(ctx) {
      const rng = new Rng(seed);
      const clean = () => {
        const v = rng.normals(n, 10);
        if (n > 2) {
          v[0] = 3.4e38;
          v[1] = -1.2e-42; // subnormal
        }
        return v;
      };
      const x0 = ctx.upload(clean(), [n], 'f32', 'x0');
      const v1 = clean();
      v1[at] = bad;
      const x1 = ctx.upload(v1, [n], 'f32', 'x1');
      const x2 = ctx.upload(clean(), [n], 'f32', 'x2');
      const flags = ctx.upload(new Uint32Array([8, 0xdead]), [2], 'u32', 'flags');
      return {
        record(rec) {
          finiteCheck(rec, x0, flags, 1);
          finiteCheck(rec, x1, flags, 2);
          finiteCheck(rec, x2, flags, 4);
        },
        async check(c) {
          const got = new Uint32Array(((await c.read(flags)) as Uint32Array | Int32Array).buffer.slice(0));
          if (got[0] !== (8 | 2) || got[1] !== 0xdead) throw new Error(`flags [${got[0]}, ${got[1]}], expected [10, ${0xdead}] (only x1 holds a ${bad}, at ${at} of ${n})`);
        },
        flops: 3 * n,
        bytes: 3 * 4 * n,
        tensors: [x0, x1, x2, flags],
      };
    },
  };
}

export const finiteSuite: KernelSuite = {
  name: 'finite_check',
  tests: [
    ...ODD_SIZES.map((n, i) => finiteCase(n, [NaN, Infinity, -Infinity][i % 3], n - 1, 70 + i)),
    finiteCase(2179, NaN, 0, 80),
    finiteCase(32000, -Infinity, 16 * 64 * 7 + 3, 81),
    finiteCase(70000, Infinity, 65537, 82),
  ],
  bench: [finiteCase(32000, NaN, 31999, 90)],
};
