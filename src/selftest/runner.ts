/**
 * The kernel page's self-test and benchmark, run by its module Worker
 * (workers/selftest_worker.ts) on this browser's WebGPU adapter:
 * - mode 'test': every kernel case of ALL_SUITES (the odd-size grid) against its CPU reference,
 *   one result per case;
 * - mode 'bench': the suites' benchmark cases at model sizes (timing.ts, the same runner as
 *   `npm run bench`): validated first, then median time (GPU timestamps where the adapter has
 *   timestamp-query), GFLOP/s, GB/s and the fraction of the adapter's copy bandwidth.
 * The page (src/ui/selftest.ts) and the Worker share these message types.
 */
import { GpuContext } from '../gpu/index.ts';
import { runCase } from './kernel_case.ts';
import { ALL_SUITES } from './suites.ts';
import { benchKernelCase, measureCopyBandwidth, type CopyBandwidth, type KernelBenchResult } from './timing.ts';

/** Worker → page, in order: 'adapter', then 'result' (test) or 'copy' + 'bench' (bench), then 'done'; or 'error'. */
export type SelfTestMessage =
  | { type: 'adapter'; adapter: GpuContext['adapter'] }
  | { type: 'result'; suite: string; name: string; ok: boolean; message: string; ms: number }
  | { type: 'copy'; copy: CopyBandwidth; timing: 'gpu-timestamp' | 'wall' }
  | { type: 'bench'; result: KernelBenchResult }
  | { type: 'done'; passed: number; failed: number }
  | { type: 'error'; message: string };

/** Starts a run; `suites` (names, e.g. ['rope', 'linear']) limits it, all suites otherwise. */
export interface SelfTestRequest {
  type: 'run';
  /** 'test' (default): correctness of every case; 'bench': timing of the benchmark cases. */
  mode?: 'test' | 'bench';
  suites?: string[];
}

/**
 * Runs `req` on a fresh GpuContext, reporting through `post`. Never throws: an unknown suite name
 * or a context that cannot be created ends in one 'error' message; a failing case is a 'result'
 * (or 'bench') with ok false and the run goes on.
 */
export async function runSelfTest(req: SelfTestRequest | undefined, post: (m: SelfTestMessage) => void): Promise<void> {
  try {
    const wanted = req?.suites?.length ? req.suites : null;
    const unknown = (wanted ?? []).filter((n) => !ALL_SUITES.some((s) => s.name === n));
    if (unknown.length) throw new Error(`unknown kernel suite ${unknown.join(', ')}; suites: ${ALL_SUITES.map((s) => s.name).join(', ')}`);
    const bench = req?.mode === 'bench';
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
}
