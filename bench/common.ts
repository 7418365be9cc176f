/**
 * Helpers shared by the benchmarks (`npm run bench [-- <name> ...]`): a profiling GPU context,
 * the adapter's copy bandwidth, a timing helper (warm-up, then the median of N runs; GPU time
 * from timestamp queries when the adapter has them, else wall time around submit + completion),
 * a table printer and JSON result files under bench/results/.
 *
 * Software adapters are ~1000× slower than GPUs and noisy (30–50% run to run): report ratios
 * measured in one run (fraction of the copy bandwidth measured here, ours against a peer).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { GpuContext, Recorder } from '../src/gpu/index.ts';
import { createNodeGpuContext } from '../src/gpu/node.ts';

/** The repository root and the folder results are written to. */
export const ROOT = resolve(import.meta.dirname, '..');
export const RESULTS_DIR = resolve(ROOT, 'bench', 'results');

/** A Node (Dawn) GPU context with per-dispatch timestamp profiling when the adapter has timestamp-query. */
export function createBenchContext(): Promise<GpuContext> {
  return createNodeGpuContext({ profile: true });
}

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

/** Prints an aligned text table (numbers right-aligned) with an optional title line. */
export function printTable(headers: readonly string[], rows: readonly (readonly (string | number)[])[], title?: string): void {
  const cells = rows.map((r) => r.map((c) => (typeof c === 'number' ? formatNumber(c) : c)));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number'));
  const line = (r: readonly string[]) => r.map((c, i) => (numeric[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
  if (title) console.log(`\n${title}`);
  console.log(line(headers));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of cells) console.log(line(r));
}

/** 3 significant digits, no exponent for ordinary magnitudes. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e6) return String(v);
  const a = Math.abs(v);
  if (a >= 1000) return v.toFixed(0);
  if (a >= 1e-3) return v.toPrecision(3);
  return v.toExponential(2);
}

/**
 * Writes `data` as pretty JSON to bench/results/<name>-<ISO timestamp>.json (colons in the time
 * replaced by '-'), creating the folder. Returns the path written.
 */
export function writeResults(name: string, data: unknown): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const stamp = new Date().toISOString().replace(/:/g, '-');
  const path = resolve(RESULTS_DIR, `${name}-${stamp}.json`);
  writeFileSync(path, `${JSON.stringify(data, null, 2)}\n`);
  return path;
}
