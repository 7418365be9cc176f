import { PEAK_FMA_ATOL, peakFma, peakFmaFlops, peakFmaRef } from '../../kernels/peak_fma.ts';
import { assertClose } from '../check.ts';
import { type KernelCase, type KernelSuite, sentinelTensor } from '../kernel_case.ts';
import { ODD_SIZES } from '../sizes.ts';

/** peak_fma (the roofline's compute probe): `threads` outputs after `iters` FMA rounds against the closed form. */
function peakCase(threads: number, iters: number): KernelCase {
  return {
    name: `threads=${threads} iters=${iters}`,
    setup(ctx) {
      const y = sentinelTensor(ctx, [threads], 'y');
      return {
        record: (rec) => peakFma(rec, y, iters),
        async check(c) {
          const want = Float64Array.from({ length: threads }, (_, t) => peakFmaRef(t, iters));
          assertClose(`peak_fma threads=${threads} iters=${iters}`, await c.readF32(y), want, { atol: PEAK_FMA_ATOL });
        },
        flops: peakFmaFlops(threads, iters),
        bytes: 4 * threads,
        tensors: [y],
      };
    },
  };
}

/**
 * The compute probe's correctness (its timing is `measurePeakCompute` in ../timing.ts, the
 * roofline's compute roof; it has no bench cases of its own).
 */
export const peakFmaSuite: KernelSuite = {
  name: 'peak_fma',
  tests: [...ODD_SIZES.map((n, i) => peakCase(n, [0, 1, 17, 63, 315, 2179][i])), peakCase(70000, 64)],
  bench: [],
};
