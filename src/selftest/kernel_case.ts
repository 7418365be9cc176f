import type { GpuContext, Recorder, Tensor } from '../gpu/index.ts';
import { SENTINEL } from './check.ts';

/**
 * One kernel case, shared by the Node tests, the Chromium Worker tests and `npm run bench`.
 * `setup` uploads inputs and pre-fills outputs with the sentinel; `record` adds the dispatch(es)
 * under test to a recording; `check` reads outputs and compares them with a CPU reference,
 * throwing an explanatory error on mismatch.
 */
export interface KernelCase {
  /** Unique within its suite; names the shape, e.g. 'bf16 M=1 K=315 N=17'. */
  name: string;
  setup(ctx: GpuContext): CaseInstance | Promise<CaseInstance>;
}

export interface CaseInstance {
  record(rec: Recorder): void;
  check(ctx: GpuContext): Promise<void>;
  /** Floating-point operations of one `record` (for GFLOP/s). */
  flops: number;
  /** Bytes one `record` must move at least (inputs read + outputs written, for GB/s). */
  bytes: number;
  /** Tensors to free afterwards. */
  tensors: Tensor[];
  /** Set by a linear layer case (y = x · Wᵀ + b): what a peer library needs to run the same product (./peer.ts). */
  linear?: LinearProblem;
}

/** One linear-layer case as a plain matrix product, for the kernel peer (./peer.ts). */
export interface LinearProblem {
  m: number;
  k: number;
  n: number;
  /** Our weight storage type (the peer gets the same values as f32). */
  weightDtype: string;
  /** x, f32 [m, k] row-major. */
  x: Float32Array;
  /** W as f32 [n, k] row-major: our weights' exact values (bf16 / f16 widen exactly). Made on demand (n·k·4 bytes). */
  weightF32(): Float32Array;
  /** b, f32 [n], or null. */
  bias: Float32Array | null;
  /**
   * Ours host to host, as a peer's run is timed: writes `x` into our input tensor, records the
   * case, submits and reads y back (f32 [m, n]). Weights stay resident.
   */
  runHostToHost(x: Float32Array): Promise<Float32Array>;
}

export interface KernelSuite {
  /** Kernel family, e.g. 'linear'. */
  name: string;
  /** Odd-size correctness grid. */
  tests: KernelCase[];
  /** Real-model sizes for `npm run bench` (validated before timing). */
  bench: KernelCase[];
}

/** An output tensor pre-filled with the sentinel. */
export function sentinelTensor(ctx: GpuContext, shape: number[], label: string): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return ctx.upload(new Float32Array(n).fill(SENTINEL), shape, 'f32', label);
}

/** Runs one case end to end: setup, one recording, submit, check, free. */
export async function runCase(ctx: GpuContext, c: KernelCase): Promise<void> {
  const inst = await c.setup(ctx);
  try {
    const rec = ctx.record(c.name);
    inst.record(rec);
    await rec.submit();
    await inst.check(ctx);
  } finally {
    for (const t of inst.tensors) t.destroy();
  }
}
