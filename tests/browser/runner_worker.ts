/// <reference lib="webworker" />
import { GpuContext } from '../../src/gpu/index.ts';
import type { BrowserSuite, RunnerMessage } from './protocol.ts';

// Runs one browser suite (tests/browser/suites/<name>.ts) inside this module Worker on navigator.gpu.
const suites = import.meta.glob<{ default: BrowserSuite }>('./suites/*.ts');
const post = (m: RunnerMessage) => (self as unknown as Worker).postMessage(m);

self.onmessage = async (e: MessageEvent<{ suite: string; fixturesUrl: string }>) => {
  const { suite, fixturesUrl } = e.data;
  try {
    const load = suites[`./suites/${suite}.ts`];
    if (!load) throw new Error(`no browser suite '${suite}' (have ${Object.keys(suites).join(', ')})`);
    const run = (await load()).default;
    const ctx = await GpuContext.create();
    post({ type: 'adapter', adapter: ctx.adapter });
    await run(ctx, {
      fixturesUrl,
      async test(name, fn) {
        const t0 = performance.now();
        try {
          await fn();
          post({ type: 'result', result: { suite, name, ok: true, message: '', ms: performance.now() - t0 } });
        } catch (err) {
          post({ type: 'result', result: { suite, name, ok: false, message: String((err as Error)?.stack ?? err), ms: performance.now() - t0 } });
        }
      },
    });
    post({ type: 'done' });
  } catch (err) {
    post({ type: 'done', error: String((err as Error)?.stack ?? err) });
  }
};
