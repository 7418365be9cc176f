/**
 * `npm run bench [-- kernels] [--filter <substr>] [--runs N] [--budget-ms MS]`: every kernel
 * family's `bench` cases (src/selftest/suites.ts, the same case lists as the tests) at real
 * model sizes. Each case is set up, validated once against its CPU reference (a failed check is
 * reported and the case not timed), then timed (one warm-up, median of up to N runs; fewer for
 * slow cases, at least 3). Prints one table per kernel family with median ms, GFLOP/s, GB/s and
 * GB/s as a fraction of the adapter's copy bandwidth measured in the same run; writes
 * bench/results/kernels-<timestamp>.json.
 */
import { parseArgs } from 'node:util';
import { ALL_SUITES } from '../src/selftest/suites.ts';
import { type KernelBenchResult, benchKernelCase, createBenchContext, measureCopyBandwidth, printTable, writeResults } from './common.ts';

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      filter: { type: 'string' },
      runs: { type: 'string' },
      'budget-ms': { type: 'string' },
    },
    strict: true,
  });
  const maxRuns = values.runs ? Number(values.runs) : 10;
  const budgetMs = values['budget-ms'] ? Number(values['budget-ms']) : 3000;
  if (!Number.isInteger(maxRuns) || maxRuns < 1) throw new Error(`--runs must be a positive integer, got '${values.runs}'`);
  if (!(budgetMs > 0)) throw new Error(`--budget-ms must be a positive number, got '${values['budget-ms']}'`);
  const filter = values.filter?.toLowerCase();

  const ctx = await createBenchContext();
  const a = ctx.adapter;
  console.log(`adapter: ${[a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ')}${a.isFallbackAdapter ? ' (fallback)' : ''}`);
  console.log(`features: ${a.features.join(', ')}; timing: ${ctx.profiler ? 'GPU timestamps' : 'wall clock'}`);
  const copy = await measureCopyBandwidth(ctx);
  console.log(`copy bandwidth: ${copy.gbps.toFixed(2)} GB/s (copyBufferToBuffer ${copy.bytes / 2 ** 20} MiB ×${copy.copiesPerRun}, read+write bytes, median of ${copy.runs})`);

  const results: KernelBenchResult[] = [];
  for (const suite of ALL_SUITES) {
    const cases = suite.bench.filter((c) => !filter || `${suite.name}: ${c.name}`.toLowerCase().includes(filter));
    if (!cases.length) continue;
    const rows: (string | number)[][] = [];
    for (const c of cases) {
      const r = await benchKernelCase(ctx, suite.name, c, copy, { runs: maxRuns, minRuns: Math.min(3, maxRuns), budgetMs });
      results.push(r);
      if (r.status === 'ok' && r.timing) {
        rows.push([c.name, r.timing.medianMs, r.gflops!, r.gbps!, `${(100 * r.fractionOfCopy!).toFixed(1)}%`, r.timing.runs]);
      } else {
        rows.push([c.name, r.status === 'check-failed' ? 'CHECK FAILED' : 'ERROR', '', '', '', '']);
        console.error(`  ${suite.name}: ${c.name}: ${r.status}: ${r.error}`);
      }
    }
    printTable(['case', 'median ms', 'GFLOP/s', 'GB/s', 'of copy BW', 'runs'], rows, `kernel ${suite.name}`);
  }
  const failed = results.filter((r) => r.status !== 'ok');
  const path = writeResults('kernels', {
    bench: 'kernels',
    date: new Date().toISOString(),
    adapter: ctx.adapter,
    timing: ctx.profiler ? 'gpu-timestamp' : 'wall',
    copyBandwidth: copy,
    options: { filter: values.filter ?? null, runs: maxRuns, budgetMs },
    results,
  });
  console.log(`\n${results.length} cases, ${failed.length} failed; results: ${path}`);
  ctx.destroy();
  if (failed.length) throw new Error(`${failed.length} kernel bench case(s) failed: ${failed.map((f) => `${f.suite}: ${f.name}`).join('; ')}`);
}
