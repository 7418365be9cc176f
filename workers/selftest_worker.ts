/// <reference lib="webworker" />
// The kernel page's module Worker, on this browser's WebGPU adapter:
// - mode 'test': every kernel case of the test suite (the odd-size grid) against its CPU
//   reference, one result per case;
// - mode 'bench': the suites' benchmark cases at model sizes (bench/timing.ts, the same runner
//   as `npm run bench`): validated first, then median time (GPU timestamps where the adapter has
//   timestamp-query), GFLOP/s, GB/s and the fraction of the adapter's copy bandwidth.
import { benchKernelCase, measureCopyBandwidth, type CopyBandwidth, type KernelBenchResult } from '../bench/timing.ts';
import { GpuContext } from '../src/gpu/index.ts';
import { runCase } from '../tests/harness/kernel_case.ts';
import { ALL_SUITES } from '../tests/kernels/all_suites.ts';

export type SelfTestMessage =
  | { type: 'adapter'; adapter: GpuContext['adapter'] }
  | { type: 'result'; suite: string; name: string; ok: boolean; message: string; ms: number }
  | { type: 'copy'; copy: CopyBandwidth; timing: 'gpu-timestamp' | 'wall' }
  | { type: 'bench'; result: KernelBenchResult }
  | { type: 'done'; passed: number; failed: number }
  | { type: 'error'; message: string };

const post = (m: SelfTestMessage) => (self as unknown as Worker).postMessage(m);

/** Starts a run; `suites` (names, e.g. ['rope', 'linear']) limits it, all suites otherwise. */
export interface SelfTestRequest {
  type: 'run';
  /** 'test' (default): correctness of every case; 'bench': timing of the benchmark cases. */
  mode?: 'test' | 'bench';
  suites?: string[];
}

self.onmessage = async (e: MessageEvent<SelfTestRequest>) => {
  try {
    const wanted = e.data?.suites?.length ? e.data.suites : null;
    const unknown = (wanted ?? []).filter((n) => !ALL_SUITES.some((s) => s.name === n));
    if (unknown.length) throw new Error(`unknown kernel suite ${unknown.join(', ')}; suites: ${ALL_SUITES.map((s) => s.name).join(', ')}`);
    const bench = e.data?.mode === 'bench';
    const ctx = await GpuContext.create({ profile: bench });
    post({ type: 'adapter', adapter: ctx.adapter });
    let passed = 0;
    let failed = 0;
    const suites = ALL_SUITES.filter((s) => !wanted || wanted.includes(s.name));
    if (bench) {
      const copy = await measureCopyBandwidth(ctx);
      post({ type: 'copy', copy, timing: ctx.profiler ? 'gpu-timestamp' : 'wall' });
      for (const suite of suites) {
        for (const c of suite.bench) {
          const result = await benchKernelCase(ctx, suite.name, c, copy, { runs: 10, minRuns: 3, budgetMs: 3000 });
          if (result.status === 'ok') passed++;
          else failed++;
          post({ type: 'bench', result });
        }
      }
    } else {
      for (const suite of suites) {
        for (const c of suite.tests) {
          const t0 = performance.now();
          try {
            await runCase(ctx, c);
            passed++;
            post({ type: 'result', suite: suite.name, name: c.name, ok: true, message: '', ms: performance.now() - t0 });
          } catch (err) {
            failed++;
            post({ type: 'result', suite: suite.name, name: c.name, ok: false, message: String((err as Error).message ?? err), ms: performance.now() - t0 });
          }
        }
      }
    }
    post({ type: 'done', passed, failed });
    ctx.destroy();
  } catch (err) {
    post({ type: 'error', message: `${(err as Error).name}: ${(err as Error).message}` });
  }
};
