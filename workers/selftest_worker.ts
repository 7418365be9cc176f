/// <reference lib="webworker" />
// Kernel self-test in a module Worker: runs every kernel case (the test suite's odd-size grid)
// on this browser's WebGPU adapter and reports each result to the page.
import { GpuContext } from '../src/gpu/index.ts';
import { runCase } from '../tests/harness/kernel_case.ts';
import { ALL_SUITES } from '../tests/kernels/all_suites.ts';

export type SelfTestMessage =
  | { type: 'adapter'; adapter: GpuContext['adapter'] }
  | { type: 'result'; suite: string; name: string; ok: boolean; message: string; ms: number }
  | { type: 'done'; passed: number; failed: number }
  | { type: 'error'; message: string };

const post = (m: SelfTestMessage) => (self as unknown as Worker).postMessage(m);

/** Starts the run; `suites` (names, e.g. ['rope', 'linear']) limits it, all suites otherwise. */
export interface SelfTestRequest {
  type: 'run';
  suites?: string[];
}

self.onmessage = async (e: MessageEvent<SelfTestRequest>) => {
  try {
    const wanted = e.data?.suites?.length ? e.data.suites : null;
    const unknown = (wanted ?? []).filter((n) => !ALL_SUITES.some((s) => s.name === n));
    if (unknown.length) throw new Error(`unknown kernel suite ${unknown.join(', ')}; suites: ${ALL_SUITES.map((s) => s.name).join(', ')}`);
    const ctx = await GpuContext.create();
    post({ type: 'adapter', adapter: ctx.adapter });
    let passed = 0;
    let failed = 0;
    for (const suite of ALL_SUITES.filter((s) => !wanted || wanted.includes(s.name))) {
      for (const c of suite.tests) {
        const t0 = performance.now();
        try {
          await runCase(ctx, c);
          passed++;
          post({ type: 'result', suite: suite.name, name: c.name, ok: true, message: '', ms: performance.now() - t0 });
        } catch (e) {
          failed++;
          post({ type: 'result', suite: suite.name, name: c.name, ok: false, message: String((e as Error).message ?? e), ms: performance.now() - t0 });
        }
      }
    }
    post({ type: 'done', passed, failed });
    ctx.destroy();
  } catch (e) {
    post({ type: 'error', message: `${(e as Error).name}: ${(e as Error).message}` });
  }
};
