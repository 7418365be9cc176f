import source from '../../shaders/embedding.wgsl?raw';
import { type GpuContext, Kernel, ParamsLayout, QuantizedTensor, type Recorder, ShapeError, Tensor, type WeightTensor, expectShape, grid1d, storageBindings } from '../gpu/index.ts';
import { WEIGHT_FORMATS_WGSL, expectWeight, weightBuffers, weightConstants, weightFormatTag } from './weight_format.ts';
import { weightRanges } from './weight_ranges.ts';

const WG = 256;

export const embeddingKernel = new Kernel('embedding', WEIGHT_FORMATS_WGSL + source, storageBindings({ w: 'read', wscale: 'read', wbias: 'read', ids: 'read', y: 'read_write' }), new ParamsLayout([
  ['rows', 'u32'],
  ['d', 'u32'],
  ['v', 'u32'],
  ['ids_offset', 'u32'],
  ['accumulate', 'u32'],
  ['row0', 'u32'],
  ['tables', 'u32'],
  ['table0', 'u32'],
  ['stride', 'u32'],
]));

export interface EmbeddingOptions {
  /** Add into y (sum of several embeddings, as LMModel.forward_text sums text + audio) instead of overwriting. */
  accumulate: boolean;
  /** Index of the first id to use inside `ids` (default 0). */
  idsOffset?: number;
  /** Rows M to look up (default y.shape[0]). */
  rows?: number;
  /**
   * Stacked tables (`stackTables`): `table` holds tables of `tableRows` rows each, row-wise; sum
   * the lookups in tables firstTable .. firstTable + tables - 1, table j's id for output row m at
   * ids[idsOffset + m * tables + j]. Default: one table, the whole `table`.
   */
  stacked?: { tables: number; firstTable?: number; tableRows: number };
}

/**
 * y[m,:] (+)= table[ids[idsOffset+m], :] for m < M (nn.Embedding; ScaledEmbedding in
 * moshi/models/lm_utils.py, whose zero_idx = -1 yields a zero vector).
 * - table: [V, D] f32 | f16 | bf16 (halves packed two per u32), or a QuantizedTensor (MLX
 *   quantizes embeddings too: a row is dequantized as a weight row, in registers)
 * - ids: i32, any shape, at least idsOffset + M elements (GPU data: read by the shader)
 * - y: f32 [M', D] with M' ≥ M; rows ≥ M are untouched
 * With `opts.stacked`: y[m,:] (+)= Σ_j table_{firstTable + j}[ids[idsOffset + m·T + j], :] in one
 * dispatch, added in order j = 0, 1, .. (the same f32 sums as T accumulating lookups of one table
 * each); an id outside [0, tableRows) of its table contributes zeros (never another table's row).
 * An id < 0 or ≥ V contributes zeros (never an out-of-bounds read). Note: the official module
 * maps exactly -1 to zeros and clamps other negative ids to row 0; Moshi only ever uses -1.
 * A table over one binding's size (GpuContext.bindingLimit) is looked up in row ranges, one
 * dispatch per range (src/kernels/weight_ranges.ts).
 * Throws ShapeError naming the tensor whose shape or dtype is wrong, or a bad offset/row count.
 */
export function embedding(rec: Recorder, table: WeightTensor, ids: Tensor, y: Tensor, opts: EmbeddingOptions): void {
  const [v, d] = expectWeight('embedding table', table);
  expectShape('embedding output', y, [-1, d], ['f32']);
  expectShape('embedding ids', ids, ids.shape, ['i32']);
  const idsOffset = opts.idsOffset ?? 0;
  const rows = opts.rows ?? y.shape[0];
  if (!Number.isInteger(idsOffset) || idsOffset < 0) throw new ShapeError(`embedding: idsOffset must be a non-negative integer, got ${idsOffset}`);
  if (!Number.isInteger(rows) || rows < 0 || rows > y.shape[0]) {
    throw new ShapeError(`embedding: rows must be an integer in [0, ${y.shape[0]}] (output '${y.label}' [${y.shape.join(', ')}]), got ${rows}`);
  }
  const tables = opts.stacked?.tables ?? 1;
  const table0 = opts.stacked?.firstTable ?? 0;
  const stride = opts.stacked?.tableRows ?? v;
  if (opts.stacked) {
    if (![tables, table0, stride].every((n) => Number.isInteger(n) && n >= 0) || tables < 1 || stride < 1 || (table0 + tables) * stride > v) {
      throw new ShapeError(`embedding: stacked tables ${table0} .. ${table0 + tables - 1} of ${stride} rows each do not fit '${table.label}' [${v}, ${d}]`);
    }
  }
  if (idsOffset + rows * tables > ids.numel) {
    throw new ShapeError(`embedding ids '${ids.label}' [${ids.shape.join(', ')}] has ${ids.numel} elements, needs idsOffset ${idsOffset} + rows ${rows}${tables > 1 ? ` × tables ${tables}` : ''}`);
  }
  if (rows === 0 || d === 0) return;
  // A table over one binding's size is looked up range by range: each adds the rows it holds
  // (only the ranges holding rows of the tables looked up).
  const lo = table0 * stride;
  const hi = (table0 + tables) * stride;
  let first = true;
  for (const r of weightRanges(rec.ctx, table)) {
    if (r.row0 >= hi || r.row0 + r.rows <= lo) continue;
    rec.dispatch(embeddingKernel, {
      buffers: [...weightBuffers(r.w), ids, y],
      params: { rows, d, v: r.rows, ids_offset: idsOffset, accumulate: opts.accumulate || !first ? 1 : 0, row0: r.row0, tables, table0, stride },
      constants: { ...weightConstants(table), WG },
      workgroups: grid1d(rows * d, WG),
      label: `embedding.${weightFormatTag(table)}${tables > 1 ? `.x${tables}` : ''}`,
    });
    first = false;
  }
}

/**
 * The tables (each [R, D], the same plain dtype f32 | f16 | bf16) copied row-wise into one new
 * tensor [T·R, D] (table t at rows [t·R, (t + 1)·R)), for `embedding`'s `stacked` lookups: the
 * sum of T lookups in one dispatch (or one per binding range: the result may exceed one binding
 * and is then bound in row ranges). The caller keeps or frees the originals. Resolves to null —
 * keep one dispatch per table — when there are fewer than two tables, a table is quantized
 * (their scales / biases are not stacked), shapes or dtypes differ, a table's bytes are not whole
 * words (odd-width halves), or the stack exceeds the device's maxBufferSize.
 */
export async function stackTables(ctx: GpuContext, tables: readonly WeightTensor[], label: string): Promise<Tensor | null> {
  if (tables.length < 2) return null;
  const t0 = tables[0];
  if (tables.some((t) => t instanceof QuantizedTensor)) return null;
  const plain = tables as readonly Tensor[];
  const [R, D] = expectWeight('stacked table', t0);
  if (plain.some((t) => t.dtype !== (t0 as Tensor).dtype || t.rank !== 2 || t.shape[0] !== R || t.shape[1] !== D)) return null;
  const dtype = (t0 as Tensor).dtype;
  const tableBytes = R * D * (dtype === 'f32' ? 4 : 2);
  if (tableBytes % 4 !== 0) return null;
  const T = plain.length;
  if (Math.max(16, Math.ceil((T * tableBytes) / 16) * 16) > ctx.device.limits.maxBufferSize) return null;
  const out = ctx.tensor([T * R, D], dtype, label, { rangeBound: true });
  const rec = ctx.record(`stack ${label}`);
  plain.forEach((t, i) => rec.copy(t, new Tensor(out.buffer, [R, D], dtype, `${label}[${i}]`, out.byteOffset + i * tableBytes, false), tableBytes));
  await rec.submit();
  return out;
}
