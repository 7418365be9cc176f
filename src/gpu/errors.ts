/**
 * Named errors of the GPU runtime. Each message says what failed and what to do about it.
 */

/** WebGPU is not available in this host (no `navigator.gpu`, or no adapter). */
export class WebGPUUnavailableError extends Error {
  override name = 'WebGPUUnavailableError';
}

/** The adapter lacks a limit or feature a model needs. */
export class GpuLimitError extends Error {
  override name = 'GpuLimitError';
}

/** The GPU device was lost (driver reset, tab backgrounded for too long, `destroy()`). */
export class GpuDeviceLostError extends Error {
  override name = 'GpuDeviceLostError';
  constructor(readonly reason: string, message: string) {
    super(`GPU device lost (${reason}): ${message}. Reload the page or recreate the engine.`);
  }
}

/** A WGSL module failed to compile or a pipeline/dispatch failed validation. */
export class GpuValidationError extends Error {
  override name = 'GpuValidationError';
}

/** Shapes or dtypes handed to a kernel do not fit its contract. */
export class ShapeError extends Error {
  override name = 'ShapeError';
}

/** The GPU ran out of memory while allocating (WebGPU 'out-of-memory' error scope). */
export class GpuOutOfMemoryError extends Error {
  override name = 'GpuOutOfMemoryError';
}
