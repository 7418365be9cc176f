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
import type { GpuContext } from '../src/gpu/index.ts';
import { createNodeGpuContext } from '../src/gpu/node.ts';

/** The repository root and the folder results are written to. */
export const ROOT = resolve(import.meta.dirname, '..');
export const RESULTS_DIR = resolve(ROOT, 'bench', 'results');

/** A Node (Dawn) GPU context with per-dispatch timestamp profiling when the adapter has timestamp-query. */
export function createBenchContext(): Promise<GpuContext> {
  return createNodeGpuContext({ profile: true });
}

export { median, measureCopyBandwidth, timeRecording, benchKernelCase } from '../src/selftest/timing.ts';
export type { CopyBandwidth, Timing, TimeOptions, KernelBenchResult } from '../src/selftest/timing.ts';

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
