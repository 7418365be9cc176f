import { AFFINE_BITS, AFFINE_GROUP_SIZES, type DType, type GpuContext, QuantizedTensor, type Tensor, type WeightTensor, packHalf } from '../gpu/index.ts';
import { firstNonFinite } from './finite.ts';
import { entryToF32, type TensorEntry, type SafetensorsFile } from './safetensors.ts';

/** A weight missing, misshapen, of an unusable dtype, or never consumed. The message names the key. */
export class WeightError extends Error {
  override name = 'WeightError';
}

/** A weight holding NaN or ±Inf: the file is corrupt (not a config mismatch). The message names the key. */
export class NonFiniteWeightError extends WeightError {
  override name = 'NonFiniteWeightError';
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

  /** Every entry of the file(s) by key (for format detection and key renaming). */
  get entries(): ReadonlyMap<string, TensorEntry> {
    return this.root.entries;
  }

  /** The file name(s) this builder reads, for error messages. */
  get source(): string {
    return this.root.source;
  }

  /**
   * A new root over the same GPU context and source with `entries` (e.g. another layout's keys
   * renamed to the official ones, src/weights/mlx_names.ts); consumption starts afresh.
   */
  withEntries(entries: ReadonlyMap<string, TensorEntry>): VarBuilder {
    return new VarBuilder({ source: this.root.source, entries, consumed: new Set(), ctx: this.root.ctx, pending: [], created: [] }, '');
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

  private checked(name: string, shape: readonly number[], dtypes: readonly string[] = FLOAT_DTYPES): TensorEntry {
    const e = this.entry(name);
    const same = e.shape.length === shape.length && e.shape.every((d, i) => d === shape[i]);
    if (!same) {
      throw new WeightError(`key '${this.key(name)}' in ${this.root.source} has shape [${e.shape.join(', ')}], expected [${shape.join(', ')}]`);
    }
    if (!dtypes.includes(e.dtype)) {
      throw new WeightError(`key '${this.key(name)}' in ${this.root.source} has dtype ${e.dtype}, expected ${dtypes.join(' or ')}`);
    }
    this.root.consumed.add(this.key(name));
    return e;
  }

  /** Host f32 values of `name`, checked against `shape`. Throws WeightError for a lazy (large, Blob-backed) entry. */
  host(name: string, shape: readonly number[]): Float32Array {
    const e = this.checked(name, shape);
    if (e.lazy) throw new WeightError(`key '${this.key(name)}' in ${this.root.source} (${e.lazy.byteLength} bytes) is read lazily and cannot be read on the host during load; open the file with a larger eagerBytes`);
    const bad = firstNonFinite(e.data, e.dtype);
    if (bad >= 0) throw new NonFiniteWeightError(`key '${this.key(name)}' in ${this.root.source} holds a non-finite value (${nonFiniteWhat(e.dtype)}) at element ${bad}: the checkpoint is corrupt`);
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
   * A weight matrix (nn.Linear weight or embedding table) [N, K] in the format the file stores it:
   * - F32 / F16 / BF16 `name`: as `tensor(name, shape, policy)`;
   * - I8 `name` [N, K] with F32 `${name}_scb` [N] beside it: PyTorch q8 (moshi/utils/quantize.py,
   *   bitsandbytes CB / SCB), kept packed;
   * - U32 `name` [N, K·bits/32] with BF16 `scales` and `biases` [N, K/groupSize] beside it (MLX
   *   `QuantizedLinear` / `QuantizedEmbedding`, `name` = 'weight'): affine, bits from the packed
   *   width (2, 4 or 8), group size from the scales (32, 64 or 128), kept packed.
   * Throws WeightError naming the key for a missing, misshapen or mismatched scale / bias, an
   * unsupported bit width (MLX also writes 3, 5 and 6 bits) or group size.
   */
  weight(name: string, shape: readonly [number, number], policy: StoragePolicy = 'f32'): WeightTensor {
    const e = this.entry(name);
    const [n, k] = shape;
    const label = this.key(name);
    if (e.dtype === 'I8') {
      const qe = this.checked(name, shape, ['I8']);
      const scb = this.checked(`${name}_scb`, [n], ['F32']);
      const q = this.uploadAs(qe, 0, n * k, [Math.ceil((n * k) / 4)], 'u32', label, true);
      const scales = this.uploadAs(scb, 0, n, [n], 'f32', `${label}_scb`, true);
      return new QuantizedTensor('q8', [n, k], 8, k, q, scales, null, label);
    }
    if (e.dtype === 'U32') {
      if (name !== 'weight') throw new WeightError(`key '${label}' in ${this.root.source}: a packed U32 weight must be a module's 'weight' (MLX layout), not '${name}'`);
      const cols = e.shape[1];
      if (e.shape.length !== 2 || e.shape[0] !== n || !cols) {
        throw new WeightError(`key '${label}' in ${this.root.source} has shape [${e.shape.join(', ')}], expected [${n}, K·bits/32] for a quantized [${n}, ${k}] weight`);
      }
      const bits = (cols * 32) / k;
      if (!AFFINE_BITS.includes(bits)) {
        const what = Number.isInteger(bits) ? `${bits}-bit` : `a packed width of ${cols} words for K = ${k}`;
        throw new WeightError(`key '${label}' in ${this.root.source}: MLX affine ${what} quantization is not supported (supported: ${AFFINE_BITS.join(', ')} bits)`);
      }
      if (!this.has('scales') || !this.has('biases')) throw new WeightError(`key '${label}' in ${this.root.source} is a packed U32 weight but '${this.key('scales')}' or '${this.key('biases')}' is missing`);
      const groups = this.entry('scales').shape[1] ?? 0;
      const gs = groups ? k / groups : NaN;
      if (!AFFINE_GROUP_SIZES.includes(gs)) {
        throw new WeightError(`key '${this.key('scales')}' in ${this.root.source} has shape [${this.entry('scales').shape.join(', ')}]: ${groups} groups per row of ${k} is a group size of ${gs}, supported ${AFFINE_GROUP_SIZES.join(', ')}`);
      }
      const qe = this.checked(name, [n, cols], ['U32']);
      const se = this.checked('scales', [n, groups], ['BF16']);
      const be = this.checked('biases', [n, groups], ['BF16']);
      const q = this.uploadAs(qe, 0, n * cols, [n, cols], 'u32', label, true);
      const scales = this.uploadAs(se, 0, n * groups, [n, groups], 'bf16', this.key('scales'), true);
      const biases = this.uploadAs(be, 0, n * groups, [n, groups], 'bf16', this.key('biases'), true);
      return new QuantizedTensor('affine', [n, k], bits, gs, q, scales, biases, label);
    }
    const pe = this.checked(name, shape);
    return this.upload(pe, 0, n * k, [...shape], policy, label, true);
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
    return Array.from({ length: parts }, (_, i) => this.upload(e, i * n, n, sub, policy, `${this.key(name)}[${i}]`, sub.length === 2));
  }

  private upload(e: TensorEntry, start: number, n: number, shape: number[], policy: StoragePolicy, label: string, rangeBound = false): Tensor {
    const half = e.dtype === 'F16' || e.dtype === 'BF16';
    const dtype: DType = policy === 'native' && half ? (e.dtype === 'F16' ? 'f16' : 'bf16') : 'f32';
    return this.uploadAs(e, start, n, shape, dtype, label, rangeBound);
  }

  /**
   * A GPU tensor of elements [start, start + n) of `e` stored as `dtype`: 'f32' (widened), 'f16' /
   * 'bf16' (packed halves of an F16 / BF16 entry) or 'u32' (the raw bytes, e.g. packed int8 or
   * MLX words, zero-padded to a whole word). Float values are checked finite (WeightError naming
   * the key and element otherwise). `rangeBound`: a weight matrix's buffer, which may exceed one
   * binding (linear and embedding bind it in row ranges, src/kernels/weight_ranges.ts).
   */
  private uploadAs(e: TensorEntry, start: number, n: number, shape: number[], dtype: DType, label: string, rangeBound = false): Tensor {
    const ctx = this.root.ctx;
    if (!ctx) throw new WeightError(`cannot upload '${label}': this VarBuilder has no GPU context`);
    const t = ctx.tensor(shape, dtype, label, { rangeBound });
    this.root.created.push(t);
    if (e.lazy) {
      // Created now (shapes are known from the header), filled by uploadPending().
      this.root.pending.push({ tensor: t, entry: e, start, n });
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

/** What firstNonFinite refuses in `dtype`: F64 is narrowed to f32, so also values beyond the f32 range. */
function nonFiniteWhat(dtype: string): string {
  return dtype === 'F64' ? 'NaN or Inf, or beyond the f32 range' : 'NaN or Inf';
}

/** Dtypes of entries read as float values. */
const FLOAT_DTYPES: readonly string[] = ['F32', 'F16', 'BF16', 'F64'];
const ELEM_BYTES: Record<string, number> = { I8: 1, U8: 1, U32: 4, I32: 4 };

/**
 * Elements [start, start + n) of an in-memory entry as the GPU tensor's `dtype` wants them
 * (packed half words, raw words, or f32). Throws WeightError for a NaN / Inf float element.
 */
function storedValues(e: TensorEntry, start: number, n: number, dtype: DType, source: string): Uint32Array | Float32Array {
  if (FLOAT_DTYPES.includes(e.dtype)) {
    const eb = e.dtype === 'F32' ? 4 : e.dtype === 'F64' ? 8 : 2;
    const bad = firstNonFinite(e.data.subarray(start * eb, (start + n) * eb), e.dtype);
    if (bad >= 0) throw new NonFiniteWeightError(`key '${e.name}' in ${source} holds a non-finite value (${nonFiniteWhat(e.dtype)}) at element ${start + bad}: the checkpoint is corrupt`);
  }
  if (dtype === 'u32') {
    const eb = ELEM_BYTES[e.dtype];
    if (!eb) throw new WeightError(`key '${e.name}' in ${source}: dtype ${e.dtype} cannot be stored as raw words`);
    const bytes = e.data.subarray(start * eb, (start + n) * eb);
    if (bytes.byteOffset % 4 === 0 && bytes.byteLength % 4 === 0) return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    const copy = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
    copy.set(bytes);
    return new Uint32Array(copy.buffer);
  }
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
