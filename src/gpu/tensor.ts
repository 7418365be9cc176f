import { type DType, storageBytes } from './dtype.ts';
import { ShapeError } from './errors.ts';

/**
 * A GPU tensor: one GPUBuffer (or a window into one) with a row-major shape and a dtype.
 * f16/bf16 elements are packed two per u32 (see dtype.ts). Tensors are created through
 * `GpuContext.tensor()` / `GpuContext.upload()`; a tensor owns its buffer unless it is a view.
 */
export class Tensor {
  readonly numel: number;
  constructor(
    readonly buffer: GPUBuffer,
    readonly shape: readonly number[],
    readonly dtype: DType,
    readonly label: string,
    /** Byte offset of element 0 inside `buffer` (multiple of 4; 256 when bound on its own). */
    readonly byteOffset = 0,
    readonly ownsBuffer = true,
  ) {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new ShapeError(`tensor '${label}': bad shape [${shape.join(', ')}]`);
    }
    this.numel = shape.reduce((a, b) => a * b, 1);
  }

  /** Bytes this tensor's elements occupy (rounded up to 4). */
  get byteLength(): number {
    return Math.max(4, storageBytes(this.dtype, this.numel));
  }

  get rank(): number {
    return this.shape.length;
  }

  /** The same storage under another shape with the same element count. */
  reshape(shape: readonly number[], label = this.label): Tensor {
    const n = shape.reduce((a, b) => a * b, 1);
    if (n !== this.numel) {
      throw new ShapeError(`reshape of '${this.label}': [${this.shape.join(', ')}] has ${this.numel} elements, [${shape.join(', ')}] has ${n}`);
    }
    return new Tensor(this.buffer, shape, this.dtype, label, this.byteOffset, false);
  }

  /** A binding resource for this tensor (offset/size window into the buffer). */
  binding(): GPUBufferBinding {
    return { buffer: this.buffer, offset: this.byteOffset, size: this.byteLength };
  }

  /** Set by GpuContext to keep its live-bytes count; called once on destroy(). */
  onDestroy: (() => void) | null = null;

  destroy(): void {
    if (this.ownsBuffer) {
      this.buffer.destroy();
      this.onDestroy?.();
      this.onDestroy = null;
    }
  }

  toString(): string {
    return `${this.label}: ${this.dtype}[${this.shape.join(', ')}]`;
  }
}

/** Throws a ShapeError unless `t` has exactly `shape` (-1 matches any size) and one of `dtypes`. */
export function expectShape(what: string, t: Tensor, shape: readonly number[], dtypes?: readonly DType[]): void {
  const ok = t.shape.length === shape.length && shape.every((d, i) => d < 0 || d === t.shape[i]);
  if (!ok) {
    const want = shape.map((d) => (d < 0 ? '?' : String(d))).join(', ');
    throw new ShapeError(`${what} '${t.label}' is expected to have shape [${want}], got [${t.shape.join(', ')}]`);
  }
  if (dtypes && !dtypes.includes(t.dtype)) {
    throw new ShapeError(`${what} '${t.label}' is expected to have dtype ${dtypes.join(' or ')}, got ${t.dtype}`);
  }
}
