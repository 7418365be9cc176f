/**
 * Benchmark timing shared by Node (`npm run bench`) and the browser (the kernel benchmark page,
 * src/selftest/runner.ts): no Node or DOM imports. Copy bandwidth, median timing of a
 * recording (GPU timestamps when the context profiles, wall time otherwise), and one kernel
 * case end to end (setup, validation against the CPU reference, timing, GFLOP/s and GB/s).
 */
import type { GpuContext, Recorder } from '../gpu/index.ts';
import { PEAK_FMA_ATOL, peakFma, peakFmaFlops, peakFmaRef } from '../kernels/peak_fma.ts';
import type { CaseInstance, KernelCase } from './kernel_case.ts';

/** Median of a non-empty list. */
export function median(values: readonly number[]): number {
  if (!values.length) throw new Error('median of an empty list');
  const s = [...values].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

export interface CopyBandwidth {
  /** GB/s (1e9 bytes per second), counting read + write bytes: 2 · bytes per copy. */
  gbps: number;
  /** Bytes per copy. */
  bytes: number;
  /** Copies per timed submit. */
  copiesPerRun: number;
  /** Median wall ms of one timed submit. */
  medianMs: number;
  runs: number;
}

/**
 * The adapter's device-to-device copy bandwidth: `copiesPerRun` copyBufferToBuffer of `bytes`
 * (default 64 MiB) in one submit, wall time from submit to onSubmittedWorkDone, median of `runs`
 * after one warm-up. GB/s counts read + write bytes (2 · bytes per copy), the same convention
 * as the kernels' GB/s, so a kernel's GB/s / this = its fraction of the copy bandwidth.
 */
export async function measureCopyBandwidth(ctx: GpuContext, opts: { bytes?: number; runs?: number; copiesPerRun?: number } = {}): Promise<CopyBandwidth> {
  const bytes = opts.bytes ?? 64 * 1024 * 1024;
  const runs = opts.runs ?? 5;
  const copiesPerRun = opts.copiesPerRun ?? 2;
  const device = ctx.device;
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const src = device.createBuffer({ label: 'bench copy src', size: bytes, usage });
  const dst = device.createBuffer({ label: 'bench copy dst', size: bytes, usage });
  try {
    // Touch both buffers so the first timed copy does not pay for lazy allocation/zeroing.
    const enc0 = device.createCommandEncoder();
    enc0.clearBuffer(src);
    enc0.clearBuffer(dst);
    device.queue.submit([enc0.finish()]);
    await ctx.sync();
    const times: number[] = [];
    for (let r = 0; r <= runs; r++) {
      const enc = device.createCommandEncoder({ label: 'bench copy' });
      for (let i = 0; i < copiesPerRun; i++) enc.copyBufferToBuffer(i % 2 ? dst : src, 0, i % 2 ? src : dst, 0, bytes);
      const t0 = performance.now();
      device.queue.submit([enc.finish()]);
      await ctx.sync();
      if (r > 0) times.push(performance.now() - t0); // r = 0 is the warm-up
    }
    const ms = median(times);
    return { gbps: (2 * bytes * copiesPerRun) / (ms * 1e6), bytes, copiesPerRun, medianMs: ms, runs };
  } finally {
    src.destroy();
    dst.destroy();
  }
}

export interface PeakCompute {
  /** Achieved GFLOP/s (1e9 FLOP per second, an FMA counted as 2) of the peak_fma probe. */
  gflops: number;
  /** Threads of the timed dispatch. */
  threads: number;
  /** FMA rounds per thread (16 independent f32 chains each). */
  iters: number;
  /** FLOPs of one dispatch. */
  flops: number;
  /** Median ms of one dispatch (GPU timestamps when the context profiles, else wall). */
  medianMs: number;
  source: 'gpu-timestamp' | 'wall';
  runs: number;
}

/**
 * The adapter's peak f32 compute: the peak_fma probe (src/kernels/peak_fma.ts: 16 independent
 * FMA chains per thread, no memory traffic) at 256 rounds per thread, its thread count grown
 * from 4096 (×4, at most `maxThreads`, default 2^20) and then its rounds (at most 8192) until
 * one dispatch takes about `targetMs` (default 20 ms), its output checked against the
 * closed-form reference, then the median of `runs` (default 5). The kernel page's compute roof.
 * @throws Error when the probe's output does not match its reference
 */
export async function measurePeakCompute(ctx: GpuContext, opts: { maxThreads?: number; targetMs?: number; runs?: number } = {}): Promise<PeakCompute> {
  const maxThreads = opts.maxThreads ?? 1 << 20;
  const targetMs = opts.targetMs ?? 20;
  let threads = Math.min(4096, maxThreads);
  let iters = 256;
  let y = ctx.tensor([threads], 'f32', 'peak_fma y');
  const time = (runs: number, warmup: number) => timeRecording(ctx, (rec) => peakFma(rec, y, iters), { warmup, runs, label: 'peak_fma' });
  try {
    let t = await time(1, 1);
    while (t.medianMs < targetMs / 2 && (threads < maxThreads || iters < 8192)) {
      const grow = Math.max(2, Math.min(64, 2 ** Math.floor(Math.log2(targetMs / Math.max(t.medianMs, 1e-3)))));
      if (threads < maxThreads) {
        threads = Math.min(maxThreads, threads * Math.min(grow, 4));
        y.destroy();
        y = ctx.tensor([threads], 'f32', 'peak_fma y');
      } else {
        iters = Math.min(8192, iters * grow);
      }
      t = await time(1, 0);
    }
    const got = await ctx.readF32(y);
    for (const i of [0, 1, 511, 1023, threads >> 1, threads - 1]) {
      const want = peakFmaRef(i, iters);
      if (!(Math.abs(got[i] - want) <= PEAK_FMA_ATOL)) throw new Error(`peak_fma: y[${i}] = ${got[i]}, expected ${want} (${iters} rounds)`);
    }
    const timing = await time(opts.runs ?? 5, 0);
    const flops = peakFmaFlops(threads, iters);
    return { gflops: flops / (timing.medianMs * 1e6), threads, iters, flops, medianMs: timing.medianMs, source: timing.source, runs: timing.runs };
  } finally {
    y.destroy();
  }
}

export interface Timing {
  /** Median ms of one recording: GPU time when source = 'gpu-timestamp', else wall time. */
  medianMs: number;
  /** Median wall ms (submit → onSubmittedWorkDone) of the same runs, always measured. */
  wallMedianMs: number;
  /** Every timed sample (ms, same source as medianMs). */
  samples: number[];
  source: 'gpu-timestamp' | 'wall';
  runs: number;
}

export interface TimeOptions {
  /** Untimed runs first (pipeline compile, caches). Default 1. */
  warmup?: number;
  /** Timed runs, upper bound. Default 10. */
  runs?: number;
  /** Lower bound on timed runs when budgetMs cuts them short. Default 3. */
  minRuns?: number;
  /** Stop adding runs once this much wall time was spent timing (the median stays over ≥ minRuns). */
  budgetMs?: number;
  label?: string;
}

/**
 * Times `record` (which adds dispatches to a fresh Recorder each run): `warmup` untimed runs,
 * then up to `runs` timed runs, one submit each, and returns the median. With timestamp
 * profiling (createBenchContext on an adapter with timestamp-query) a run's time is the sum of
 * its dispatches' GPU time; otherwise wall time from submit to completion (includes submit
 * overhead: prefer recordings that do enough work).
 */
export async function timeRecording(ctx: GpuContext, record: (rec: Recorder) => void, opts: TimeOptions = {}): Promise<Timing> {
  const warmup = opts.warmup ?? 1;
  const runs = opts.runs ?? 10;
  const minRuns = Math.min(opts.minRuns ?? 3, runs);
  const budget = opts.budgetMs ?? Infinity;
  const profiler = ctx.profiler;
  const once = async (): Promise<{ gpu: number; wall: number }> => {
    profiler?.reset();
    const rec = ctx.record(opts.label ?? 'bench');
    record(rec);
    const t0 = performance.now();
    await rec.submit(); // with a profiler, submit() also collects the timestamps (after completion)
    await ctx.sync();
    const wall = performance.now() - t0;
    const gpu = profiler ? profiler.report().reduce((s, r) => s + r.ms, 0) : wall;
    return { gpu, wall };
  };
  for (let i = 0; i < warmup; i++) await once();
  const samples: number[] = [];
  const walls: number[] = [];
  const start = performance.now();
  while (samples.length < runs) {
    const r = await once();
    samples.push(r.gpu);
    walls.push(r.wall);
    if (samples.length >= minRuns && performance.now() - start > budget) break;
  }
  // A profiler that returned no time (an adapter whose timestamps read 0) falls back to wall time.
  const gpuOk = profiler !== null && samples.every((s) => s > 0);
  return {
    medianMs: gpuOk ? median(samples) : median(walls),
    wallMedianMs: median(walls),
    samples: gpuOk ? samples : walls,
    source: gpuOk ? 'gpu-timestamp' : 'wall',
    runs: samples.length,
  };
}

/** One benchmarked kernel case. `status` is 'ok' only when the output matched its reference. */
export interface KernelBenchResult {
  suite: string;
  name: string;
  status: 'ok' | 'check-failed' | 'error';
  error?: string;
  timing?: Timing;
  flops?: number;
  bytes?: number;
  gflops?: number;
  gbps?: number;
  fractionOfCopy?: number;
}

/**
 * Sets up `c`, records it once and validates the output against its CPU reference (a failed
 * check is reported and the case not timed), then times it (`timeRecording`, one warm-up) and
 * derives GFLOP/s, GB/s and the fraction of `copy` bandwidth. `after` (e.g. the kernel peer of
 * ./peer.ts) runs on a validated, timed case before its tensors are freed. Never throws: setup,
 * check and GPU errors (and `after`'s) come back in `status` / `error`.
 */
export async function benchKernelCase(
  ctx: GpuContext, suite: string, c: KernelCase, copy: CopyBandwidth, opts: TimeOptions = {},
  after?: (inst: CaseInstance, result: KernelBenchResult) => Promise<void>,
): Promise<KernelBenchResult> {
  const r: KernelBenchResult = { suite, name: c.name, status: 'ok' };
  let inst;
  try {
    inst = await c.setup(ctx);
  } catch (e) {
    return { ...r, status: 'error', error: `setup: ${(e as Error).message}` };
  }
  try {
    const rec = ctx.record(c.name);
    inst.record(rec);
    await rec.submit();
    try {
      await inst.check(ctx);
    } catch (e) {
      return { ...r, status: 'check-failed', error: (e as Error).message };
    }
    const t = await timeRecording(ctx, (rr) => inst.record(rr), { warmup: 1, label: c.name, ...opts });
    r.timing = t;
    r.flops = inst.flops;
    r.bytes = inst.bytes;
    r.gflops = inst.flops / (t.medianMs * 1e6);
    r.gbps = inst.bytes / (t.medianMs * 1e6);
    r.fractionOfCopy = r.gbps / copy.gbps;
    if (after) await after(inst, r);
    return r;
  } catch (e) {
    return { ...r, status: 'error', error: (e as Error).message };
  } finally {
    for (const tensor of inst.tensors) tensor.destroy();
  }
}
