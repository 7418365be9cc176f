/**
 * `npm run bench [-- kernels] [--filter <substr>] [--runs N] [--budget-ms MS] [--peer wasm|none]`:
 * every kernel family's `bench` cases (src/selftest/suites.ts, the same case lists as the tests)
 * at real model sizes. Each case is set up, validated once against its CPU reference (a failed
 * check is reported and the case not timed), then timed (one warm-up, median of up to N runs;
 * fewer for slow cases, at least 3). Prints one table per kernel family with median ms, GFLOP/s,
 * GB/s, FLOP/B (arithmetic intensity) and GB/s as a fraction of the adapter's copy bandwidth
 * measured in the same run, and the adapter's peak FMA compute (the roofline's two roofs, as the
 * kernel page shows them).
 *
 * The kernel peer (src/selftest/peer.ts): each linear case (matvec M = 1, matmul M > 1) is also
 * run by onnxruntime-web's wasm backend (the CPU: ORT's WebGPU backend failed to create a session
 * in Node on the `webgpu` package's Dawn, "Invalid argument", so its WebGPU peer runs on the
 * kernel page only) on the same shape and weights, host to host and alternating with ours host
 * to host; a table prints ours ÷ peer per case (below 1: ours faster). Writes
 * bench/results/kernels-<timestamp>.json.
 */
import { parseArgs } from 'node:util';
import { type OrtModule, type PeerResult, benchLinearPeer } from '../src/selftest/peer.ts';
import { ALL_SUITES } from '../src/selftest/suites.ts';
import { measurePeakCompute } from '../src/selftest/timing.ts';
import { type KernelBenchResult, benchKernelCase, createBenchContext, measureCopyBandwidth, printTable, writeResults } from './common.ts';

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      filter: { type: 'string' },
      runs: { type: 'string' },
      'budget-ms': { type: 'string' },
      peer: { type: 'string', default: 'wasm' },
    },
    strict: true,
  });
  const maxRuns = values.runs ? Number(values.runs) : 10;
  const budgetMs = values['budget-ms'] ? Number(values['budget-ms']) : 3000;
  if (!Number.isInteger(maxRuns) || maxRuns < 1) throw new Error(`--runs must be a positive integer, got '${values.runs}'`);
  if (!(budgetMs > 0)) throw new Error(`--budget-ms must be a positive number, got '${values['budget-ms']}'`);
  const filter = values.filter?.toLowerCase();
  if (values.peer !== 'wasm' && values.peer !== 'none') throw new Error(`--peer must be wasm or none, got '${values.peer}'`);
  const ort = values.peer === 'wasm' ? ((await import('onnxruntime-web')) as unknown as OrtModule) : null;

  const ctx = await createBenchContext();
  const a = ctx.adapter;
  console.log(`adapter: ${[a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ')}${a.isFallbackAdapter ? ' (fallback)' : ''}`);
  console.log(`features: ${a.features.join(', ')}; timing: ${ctx.profiler ? 'GPU timestamps' : 'wall clock'}`);
  const copy = await measureCopyBandwidth(ctx);
  console.log(`copy bandwidth: ${copy.gbps.toFixed(2)} GB/s (copyBufferToBuffer ${copy.bytes / 2 ** 20} MiB ×${copy.copiesPerRun}, read+write bytes, median of ${copy.runs})`);
  const peak = await measurePeakCompute(ctx);
  console.log(`peak compute: ${peak.gflops.toFixed(2)} GFLOP/s (peak_fma: ${peak.threads} threads × ${peak.iters} rounds of 16 f32 FMA chains, median of ${peak.runs})`);

  const results: KernelBenchResult[] = [];
  const peers: PeerResult[] = [];
  for (const suite of ALL_SUITES) {
    const cases = suite.bench.filter((c) => !filter || `${suite.name}: ${c.name}`.toLowerCase().includes(filter));
    if (!cases.length) continue;
    const rows: (string | number)[][] = [];
    for (const c of cases) {
      const timing = { runs: maxRuns, minRuns: Math.min(3, maxRuns), budgetMs };
      const r = await benchKernelCase(ctx, suite.name, c, copy, timing, async (inst) => {
        if (ort && inst.linear) peers.push(await benchLinearPeer(ort, 'wasm', suite.name, c.name, inst.linear, timing));
      });
      results.push(r);
      if (r.status === 'ok' && r.timing) {
        rows.push([c.name, r.timing.medianMs, r.gflops!, r.gbps!, r.flops! / r.bytes!, `${(100 * r.fractionOfCopy!).toFixed(1)}%`, r.timing.runs]);
      } else {
        rows.push([c.name, r.status === 'check-failed' ? 'CHECK FAILED' : 'ERROR', '', '', '', '', '']);
        console.error(`  ${suite.name}: ${c.name}: ${r.status}: ${r.error}`);
      }
    }
    printTable(['case', 'median ms', 'GFLOP/s', 'GB/s', 'FLOP/B', 'of copy BW', 'runs'], rows, `kernel ${suite.name}`);
  }
  if (peers.length) {
    printTable(
      ['case', 'ours ms', 'peer ms', 'ours ÷ peer', 'faster', 'max |Δ|', 'runs'],
      peers.map((p) => (p.status === 'ok'
        ? [`${p.suite}: ${p.name}`, p.oursMedianMs!, p.peerMedianMs!, p.ratio!, p.ratio! < 1 ? 'ours' : 'peer', p.maxAbsDiff!, p.runs!]
        : [`${p.suite}: ${p.name}`, p.status === 'check-failed' ? 'PEER CHECK FAILED' : 'PEER ERROR', '', '', '', '', ''])),
      `kernel peer: ${peers[0].detail}; both sides host to host (x in, y out, weights resident), timed alternately`,
    );
    for (const p of peers) if (p.status !== 'ok') console.error(`  peer ${p.suite}: ${p.name}: ${p.status}: ${p.error}`);
  }
  const failed = [...results.filter((r) => r.status !== 'ok'), ...peers.filter((p) => p.status !== 'ok')];
  const path = writeResults('kernels', {
    bench: 'kernels',
    date: new Date().toISOString(),
    adapter: ctx.adapter,
    timing: ctx.profiler ? 'gpu-timestamp' : 'wall',
    copyBandwidth: copy,
    peakCompute: peak,
    options: { filter: values.filter ?? null, runs: maxRuns, budgetMs, peer: values.peer },
    results,
    peers,
  });
  console.log(`\n${results.length} cases, ${failed.length} failed; results: ${path}`);
  ctx.destroy();
  if (failed.length) throw new Error(`${failed.length} kernel bench case(s) failed: ${failed.map((f) => `${f.suite}: ${f.name}`).join('; ')}`);
}
