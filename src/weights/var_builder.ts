import { type DType, type GpuContext, type Tensor, packHalf } from '../gpu/index.ts';
import { entryToF32, type TensorEntry, type SafetensorsFile } from './safetensors.ts';

/** A weight missing, misshapen, of an unusable dtype, or never consumed. The message names the key. */
export class WeightError extends Error {
  override name = 'WeightError';
}

/** How a weight is stored on the GPU: always f32, or its file dtype (F16/BF16 stay packed halves). */
export type StoragePolicy = 'f32' | 'native';

/** A GPU tensor created for a lazy entry, filled by `uploadPending()`. */
interface PendingUpload {
  tensor: Tensor;
  entry: TensorEntry;
  /** First element of the entry this tensor holds (chunks), and how many. */
  start: number;
  n: number;
  policy: StoragePolicy;
}

interface Root {
  source: string;
  entries: ReadonlyMap<string, TensorEntry>;
  consumed: Set<string>;
  ctx: GpuContext | null;
  pending: PendingUpload[];
  /** Every GPU tensor created from this file (destroyLoaded() frees them after a failed load). */
  created: Tensor[];
}

/**
 * Reads weights by their literal checkpoint keys, as the official Rust port does through candle:
 * `vb.pp('encoder').pp('model').pp(0).tensor('conv.conv.weight', [cOut, cIn, k])`. Every read
 * checks the shape; `finish()` fails on keys never consumed. All load-time transforms of the
 * engine happen here or in the model constructors that call it (documented there).
 */
export class VarBuilder {
  private constructor(private readonly root: Root, readonly prefix: string) {}

  /** A root over one or more parsed safetensors files (later files may not repeat keys). */
  static fromSafetensors(ctx: GpuContext | null, files: SafetensorsFile[]): VarBuilder {
    const entries = new Map<string, TensorEntry>();
    for (const f of files) {
      for (const [k, e] of f.tensors) {
        if (entries.has(k)) throw new WeightError(`key '${k}' appears in more than one file (${f.fileName})`);
        entries.set(k, e);
      }
    }
    return new VarBuilder({ source: files.map((f) => f.fileName).join(', '), entries, consumed: new Set(), ctx, pending: [], created: [] }, '');
  }

  /** A root over in-memory entries (seeded random weights for benchmarks, tests). */
  static fromEntries(ctx: GpuContext | null, entries: ReadonlyMap<string, TensorEntry>, source = '<memory>'): VarBuilder {
    return new VarBuilder({ source, entries, consumed: new Set(), ctx, pending: [], created: [] }, '');
  }

  /** Descends one level: `pp('layers').pp(3)` reads keys under `layers.3.`. */
  pp(name: string | number): VarBuilder {
    return new VarBuilder(this.root, this.key(String(name)));
  }

  /** The full checkpoint key of `name` under this prefix. */
  key(name: string): string {
    return this.prefix ? `${this.prefix}.${name}` : name;
  }

  has(name: string): boolean {
    return this.root.entries.has(this.key(name));
  }

  /** The stored dtype of `name` (throws WeightError if missing; does not mark it consumed). */
  dtypeOf(name: string): string {
    return this.entry(name).dtype;
  }

  /** The stored shape of `name` (throws WeightError if missing; does not mark it consumed). */
  shapeOf(name: string): number[] {
    return [...this.entry(name).shape];
  }

  /** Keys under this prefix (relative), sorted. */
  keys(): string[] {
    const p = this.prefix ? `${this.prefix}.` : '';
    return [...this.root.entries.keys()].filter((k) => k.startsWith(p)).map((k) => k.slice(p.length)).sort();
  }

  private entry(name: string): TensorEntry {
    const k = this.key(name);
    const e = this.root.entries.get(k);
    if (!e) {
      const near = [...this.root.entries.keys()].filter((x) => x.startsWith(this.prefix)).slice(0, 5);
      throw new WeightError(`missing key '${k}' in ${this.root.source}${near.length ? ` (keys under '${this.prefix}': ${near.join(', ')}, ...)` : ''}`);
    }
    return e;
  }

  private checked(name: string, shape: readonly number[]): TensorEntry {
    const e = this.entry(name);
    const same = e.shape.length === shape.length && e.shape.every((d, i) => d === shape[i]);
    if (!same) {
      throw new WeightError(`key '${this.key(name)}' in ${this.root.source} has shape [${e.shape.join(', ')}], expected [${shape.join(', ')}]`);
    }
    if (!['F32', 'F16', 'BF16', 'F64'].includes(e.dtype)) {
      throw new WeightError(`key '${this.key(name)}' has dtype ${e.dtype}, expected a float dtype (F32, F16, BF16)`);
    }
    this.root.consumed.add(this.key(name));
    return e;
  }

  /** Host f32 values of `name`, checked against `shape`. Throws WeightError for a lazy (large, Blob-backed) entry. */
  host(name: string, shape: readonly number[]): Float32Array {
    const e = this.checked(name, shape);
    if (e.lazy) throw new WeightError(`key '${this.key(name)}' in ${this.root.source} (${e.lazy.byteLength} bytes) is read lazily and cannot be read on the host during load; open the file with a larger eagerBytes`);
    return entryToF32(e, this.root.source);
  }

  /** Marks `name` consumed after checking its shape, without reading it (e.g. `_initialized` flags). */
  consume(name: string, shape: readonly number[]): void {
    this.checked(name, shape);
  }

  /**
   * A GPU tensor of `name` with `shape`. Policy 'f32' (default) stores f32; 'native' keeps F16 and
   * BF16 as packed halves (two per u32) for kernels that unpack them (linear, embedding).
   */
  tensor(name: string, shape: readonly number[], policy: StoragePolicy = 'f32'): Tensor {
    const e = this.checked(name, shape);
    return this.upload(e, 0, e.shape.reduce((a, b) => a * b, 1), [...shape], policy, this.key(name));
  }

  /**
   * Splits `name` (shape `shape`) along dim 0 into `parts` equal tensors, each of shape
   * [shape[0]/parts, ...shape[1:]]. This is the one place where fused or stacked checkpoint
   * tensors are split (per-step depformer weights stacked along dim 0).
   */
  chunks(name: string, shape: readonly number[], parts: number, policy: StoragePolicy = 'f32'): Tensor[] {
    const e = this.checked(name, shape);
    if (shape[0] % parts !== 0) throw new WeightError(`key '${this.key(name)}': dim 0 (${shape[0]}) is not divisible into ${parts} parts`);
    const sub = [shape[0] / parts, ...shape.slice(1)];
    const n = sub.reduce((a, b) => a * b, 1);
    return Array.from({ length: parts }, (_, i) => this.upload(e, i * n, n, sub, policy, `${this.key(name)}[${i}]`));
  }

  private upload(e: TensorEntry, start: number, n: number, shape: number[], policy: StoragePolicy, label: string): Tensor {
    const ctx = this.root.ctx;
    if (!ctx) throw new WeightError(`cannot upload '${label}': this VarBuilder has no GPU context`);
    const half = e.dtype === 'F16' || e.dtype === 'BF16';
    const dtype: DType = policy === 'native' && half ? (e.dtype === 'F16' ? 'f16' : 'bf16') : 'f32';
    const t = ctx.tensor(shape, dtype, label);
    this.root.created.push(t);
    if (e.lazy) {
      // Created now (shapes are known from the header), filled by uploadPending().
      this.root.pending.push({ tensor: t, entry: e, start, n, policy });
      return t;
    }
    ctx.write(t, storedValues(e, start, n, dtype, this.root.source));
    return t;
  }

  /**
   * Destroys every GPU tensor this file's VarBuilder created (idempotent with the model's own
   * destroy): a load that failed half-way (a missing key, a bad file) gives its GPU memory back
   * before the next attempt.
   */
  destroyLoaded(): void {
    for (const t of this.root.created) t.destroy();
    this.root.created = [];
    this.root.pending = [];
  }

  /**
   * Reads the lazy (Blob-backed) entries whose tensors were created since the last call, one
   * entry at a time, and writes them to their GPU tensors: host memory holds one tensor's bytes
   * at a time. Models call it at the end of `load`, before any kernel reads the weights; a no-op
   * for in-memory files. `onProgress(done, total)` counts bytes.
   */
  async uploadPending(onProgress?: (doneBytes: number, totalBytes: number) => void): Promise<void> {
    const ctx = this.root.ctx;
    const pending = this.root.pending;
    this.root.pending = [];
    if (!pending.length || !ctx) return;
    const byEntry = new Map<TensorEntry, PendingUpload[]>();
    for (const p of pending) {
      const list = byEntry.get(p.entry);
      if (list) list.push(p);
      else byEntry.set(p.entry, [p]);
    }
    const total = [...byEntry.keys()].reduce((a, e) => a + (e.lazy?.byteLength ?? 0), 0);
    let done = 0;
    let unsynced = 0;
    for (const [e, ps] of byEntry) {
      const data = await e.lazy!.read();
      const loaded: TensorEntry = { name: e.name, dtype: e.dtype, shape: e.shape, data };
      for (const p of ps) ctx.write(p.tensor, storedValues(loaded, p.start, p.n, p.tensor.dtype, this.root.source));
      done += data.byteLength;
      unsynced += data.byteLength;
      onProgress?.(done, total);
      // Let the queue drain its staged copies now and then: bounded host memory.
      if (unsynced >= 256 * 1024 * 1024 && done < total) {
        await ctx.sync();
        unsynced = 0;
      }
    }
  }

  /** Keys of the whole file never read. */
  unconsumed(): string[] {
    return [...this.root.entries.keys()].filter((k) => !this.root.consumed.has(k)).sort();
  }

  /** Throws WeightError naming every key that was never consumed (an extra or misnamed weight). */
  finish(): void {
    const extra = this.unconsumed();
    if (extra.length) {
      throw new WeightError(`${extra.length} key(s) in ${this.root.source} were not used by the model (wrong config or checkpoint?): ${extra.slice(0, 10).join(', ')}${extra.length > 10 ? ', ...' : ''}`);
    }
  }
}

/** Elements [start, start + n) of an in-memory entry as the GPU tensor's `dtype` wants them (packed half words, or f32). */
function storedValues(e: TensorEntry, start: number, n: number, dtype: DType, source: string): Uint32Array | Float32Array {
  if (dtype === 'f16' || dtype === 'bf16') {
    const bytes = e.data.subarray(start * 2, (start + n) * 2);
    if (bytes.byteOffset % 4 === 0 && bytes.byteLength % 4 === 0) return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    const copy = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
    copy.set(bytes);
    return new Uint32Array(copy.buffer);
  }
  return entryToF32(e, source).subarray(start, start + n);
}

/** Packs host f32 values as the given storage dtype (for in-memory bf16/f16 weights). */
export function hostToEntry(name: string, values: Float32Array, shape: number[], dtype: 'F32' | 'F16' | 'BF16'): TensorEntry {
  if (dtype === 'F32') return { name, dtype, shape, data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
  const words = packHalf(values, dtype === 'F16' ? 'f16' : 'bf16');
  return { name, dtype, shape, data: new Uint8Array(words.buffer, 0, values.length * 2) };
}
